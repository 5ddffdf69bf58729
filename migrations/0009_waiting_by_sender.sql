-- What a sender stores for computations nobody here submitted is bounded (max_unsolicited_bytes):
-- summed once per sender for each batch that brings such messages, over its waiting rows only.
CREATE INDEX inbox_waiting_by_sender ON inbox (sender) WHERE body IS NOT NULL;
