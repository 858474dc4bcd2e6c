//! The cost-data kinds: CurPipeline (the S3 bucket, its delivery policy and the BCM Data
//! Exports export or legacy CUR report that fill it, and the Glue database and crawler that
//! make it queryable). `desired` says what a pipeline wants from its spec alone,
//! `bucket_policy` merges its delivery statement into a shared bucket policy, and
//! `cur_pipeline` reconciles it (observe, plan, execute).

pub mod bucket_policy;
pub mod cur_pipeline;
pub mod desired;
