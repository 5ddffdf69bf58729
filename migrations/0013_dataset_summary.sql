-- For an input the node read from a dataset: the summary of the read (JSON: the dataset, the rows
-- that became records and those skipped for a missing value), shown with the computation, so that
-- what a result was computed over stays visible after the submission's answer.
ALTER TABLE computations ADD COLUMN dataset TEXT;
