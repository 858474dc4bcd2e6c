//! The cost-data kinds: CurPipeline (the S3 bucket, its delivery policy and the BCM Data
//! Exports export or legacy CUR report that fill it).

pub mod cur_pipeline;
