-- Pending chunks are bounded per sender (max_pending_chunk_bytes): summed at every chunk.
CREATE INDEX chunks_by_sender ON chunks (sender);
