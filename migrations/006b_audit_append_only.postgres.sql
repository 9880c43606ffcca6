-- No role may rewrite the audit trail (11.6): UPDATE, DELETE and TRUNCATE fail. A checkpoint
-- row may only go from unsigned to signed, once.
CREATE OR REPLACE FUNCTION gatewayz_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'gatewayz: % on % is not allowed (append-only)', TG_OP, TG_TABLE_NAME;
END $$
-- statement
CREATE OR REPLACE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION gatewayz_append_only()
-- statement
CREATE OR REPLACE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION gatewayz_append_only()
-- statement
CREATE OR REPLACE FUNCTION gatewayz_sign_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.signature IS NOT NULL OR NEW.seq <> OLD.seq
       OR NEW.head_hash <> OLD.head_hash OR NEW.previous_seq <> OLD.previous_seq THEN
        RAISE EXCEPTION 'gatewayz: a checkpoint is signed once and never changed';
    END IF;
    RETURN NEW;
END $$
-- statement
CREATE OR REPLACE TRIGGER audit_checkpoints_sign_once BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION gatewayz_sign_once()
