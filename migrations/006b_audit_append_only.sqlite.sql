-- No role may rewrite the audit trail (11.6); a checkpoint is signed once.
CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'gatewayz: audit entries are append-only'); END
-- statement
CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'gatewayz: audit entries are append-only'); END
-- statement
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_sign_once BEFORE UPDATE ON audit_checkpoints
WHEN OLD.signature IS NOT NULL OR NEW.seq <> OLD.seq OR NEW.head_hash <> OLD.head_hash
BEGIN SELECT RAISE(ABORT, 'gatewayz: a checkpoint is signed once and never changed'); END
-- statement
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'gatewayz: checkpoints are append-only'); END
