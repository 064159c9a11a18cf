-- Reset of an instance's disks to its image, for non-persistent VDI desktops: the desktop is
-- reset on sign-out, what the user wrote to its disks discarded.
--
-- reset_root is set by the gateway (VDI) on a stopped instance together with a start request
-- (pending_op = 'start'). The scheduler's start call to the agent then carries
-- {"reset_root": true, "reset_id": "<op_seq>"} (docs/agent-api.md): the agent makes a new root
-- overlay over the same cached base image (and a new, empty ephemeral disk) before it starts the
-- domain. The flag is cleared in the same UPDATE that records the start's success; a start that
-- fails leaves it set, so that the next start resets the disks too.
ALTER TABLE instances ADD COLUMN reset_root boolean NOT NULL DEFAULT false;
