//! The object store on Amazon S3 (or LocalStack), through aws-sdk-s3. Put-if-absent is a
//! conditional `PutObject` (`If-None-Match: *`, 412 when the key exists); streamed uploads
//! buffer 8 MiB parts into a multipart upload, so the object appears only when complete
//! and an abandoned upload is aborted rather than left half-written.

use crate::{validate_key, validate_prefix, ByteStream, ObjectMeta, ObjectStore, PutOutcome, StoreError, Upload};
use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

/// S3's minimum part size is 5 MiB; 8 MiB keeps the part count of a 64 MiB photo at 8.
const PART_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

/// Turns an SDK error into a [`StoreError`] a caller can act on: outages and throttling
/// are retryable; a missing bucket or refused credentials say what to fix.
/// Conditional puts sent again after a 409 before giving up (about 0.6 s in all).
const CONDITIONAL_CONFLICT_TRIES: u32 = 5;

fn classify<E>(operation: &'static str, key: &str, bucket: &str, error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|response| response.status().as_u16());
    let code = error.code().unwrap_or("").to_owned();
    let detail = DisplayErrorContext(&error).to_string();
    match (&error, status, code.as_str()) {
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _, _) => StoreError::Unavailable {
            operation,
            message: format!("cannot reach S3 (check AWS_ENDPOINT_URL and the network): {detail}"),
        },
        (_, _, "NoSuchBucket") => StoreError::Refused {
            operation,
            key: key.to_owned(),
            message: format!("bucket {bucket:?} does not exist: run `darkroom setup --backend aws` or set --bucket"),
        },
        (_, Some(404), _) | (_, _, "NoSuchKey") | (_, _, "NotFound") => StoreError::NotFound { key: key.to_owned() },
        (_, Some(403), _) | (_, _, "InvalidAccessKeyId") | (_, _, "SignatureDoesNotMatch") => StoreError::Refused {
            operation,
            key: key.to_owned(),
            message: format!("access denied: check the AWS credentials and the bucket policy ({detail})"),
        },
        (_, Some(status), _) if status >= 500 || status == 429 => {
            StoreError::Unavailable { operation, message: detail }
        }
        _ => StoreError::Refused { operation, key: key.to_owned(), message: detail },
    }
}

impl S3Store {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn get_object(&self, key: &str) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StoreError> {
        validate_key(key)?;
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("get", key, &self.bucket, e))
    }

    /// Creates the bucket if it does not exist (for `darkroom setup`).
    pub async fn create_bucket(&self, region: Option<&str>) -> Result<(), StoreError> {
        if self.client.head_bucket().bucket(&self.bucket).send().await.is_ok() {
            return Ok(());
        }
        let mut request = self.client.create_bucket().bucket(&self.bucket);
        if let Some(region) = region.filter(|r| *r != "us-east-1") {
            let location = aws_sdk_s3::types::BucketLocationConstraint::from(region);
            request = request.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(location).build(),
            );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) if matches!(error.code(), Some("BucketAlreadyOwnedByYou")) => Ok(()),
            Err(error) => Err(classify("create bucket", "", &self.bucket, error)),
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(SdkByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify("put", key, &self.bucket, e))?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, body: Bytes, content_type: &str) -> Result<PutOutcome, StoreError> {
        validate_key(key)?;
        for conflict in 0..CONDITIONAL_CONFLICT_TRIES {
            let sent = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .if_none_match("*")
                .body(SdkByteStream::from(body.clone()))
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(PutOutcome::Created),
                // 412: the key exists.
                Err(error) if error.code() == Some("PreconditionFailed") => return Ok(PutOutcome::AlreadyExists),
                // 409: another conditional write *or a delete* of the key was in progress, so
                // whether the key exists is not known (a seat released by a failed batch
                // while another claims it is free, not taken). S3 says: try again.
                Err(error) if error.code() == Some("ConditionalRequestConflict") => {
                    tracing::debug!(key, conflict, "conditional put conflicted with another request; trying again");
                    if conflict + 1 < CONDITIONAL_CONFLICT_TRIES {
                        tokio::time::sleep(std::time::Duration::from_millis(20 << conflict)).await;
                    }
                }
                Err(error) => return Err(classify("put-if-absent", key, &self.bucket, error)),
            }
        }
        Err(StoreError::Unavailable {
            operation: "put-if-absent",
            message: format!("{key:?}: S3 kept answering 409 ConditionalRequestConflict (other requests write or delete this key); try again"),
        })
    }

    async fn start_upload(&self, key: &str, content_type: &str) -> Result<Box<dyn Upload>, StoreError> {
        validate_key(key)?;
        Ok(Box::new(S3Upload {
            store: self.clone(),
            key: key.to_owned(),
            content_type: content_type.to_owned(),
            buffer: BytesMut::new(),
            upload_id: None,
            parts: Vec::new(),
            size: 0,
        }))
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let object = self.get_object(key).await?;
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Unavailable { operation: "get", message: e.to_string() })?;
        Ok(body.into_bytes())
    }

    async fn get_stream(&self, key: &str) -> Result<(ObjectMeta, ByteStream), StoreError> {
        let object = self.get_object(key).await?;
        let size = object.content_length().unwrap_or(0).max(0) as u64;
        let stream = futures::stream::unfold(object.body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Some((Ok(chunk), body)),
                Ok(None) => None,
                Err(error) => {
                    Some((Err(StoreError::Unavailable { operation: "get", message: error.to_string() }), body))
                }
            }
        })
        // Fused: polled again after its end it says "ended" again, as the local store's
        // does, instead of panicking (unfold's rule), so a reader may look once too often.
        .fuse()
        .boxed();
        Ok((ObjectMeta { key: key.to_owned(), size }, stream))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        validate_key(key)?;
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(head) => {
                Ok(Some(ObjectMeta { key: key.to_owned(), size: head.content_length().unwrap_or(0).max(0) as u64 }))
            }
            Err(error) => match classify("head", key, &self.bucket, error) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        validate_prefix(prefix)?;
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("list", prefix, &self.bucket, e))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    found.push(ObjectMeta { key: key.to_owned(), size: object.size().unwrap_or(0).max(0) as u64 });
                }
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<Vec<ObjectMeta>, StoreError> {
        validate_prefix(prefix)?;
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_owned))
            .max_keys(max.clamp(1, crate::MAX_PAGE) as i32)
            .send()
            .await
            .map_err(|e| classify("list", prefix, &self.bucket, e))?;
        let mut found: Vec<ObjectMeta> = page
            .contents()
            .iter()
            .filter_map(|object| {
                Some(ObjectMeta { key: object.key()?.to_owned(), size: object.size().unwrap_or(0).max(0) as u64 })
            })
            .collect();
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        for chunk in keys.chunks(crate::MAX_PAGE) {
            let mut objects = Vec::with_capacity(chunk.len());
            for key in chunk {
                validate_key(key)?;
                objects.push(ObjectIdentifier::builder().key(key).build().map_err(|e| StoreError::Refused {
                    operation: "delete",
                    key: key.clone(),
                    message: e.to_string(),
                })?);
            }
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StoreError::Refused { operation: "delete", key: String::new(), message: e.to_string() })?;
            let output = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| classify("delete", "", &self.bucket, e))?;
            if let Some(failed) = output.errors().first() {
                // Per-key failures (throttling, a transient error): the caller repeats the
                // whole batch, which deletes what is left.
                return Err(StoreError::Unavailable {
                    operation: "delete",
                    message: format!(
                        "{} of {} deletes failed, the first {:?}: {}",
                        output.errors().len(),
                        chunk.len(),
                        failed.key().unwrap_or(""),
                        failed.message().unwrap_or(failed.code().unwrap_or("unknown error"))
                    ),
                });
            }
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        match self.client.delete_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(error) => match classify("delete", key, &self.bucket, error) {
                StoreError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn check(&self) -> Result<(), StoreError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(error) => match classify("check", "", &self.bucket, error) {
                StoreError::NotFound { .. } => Err(StoreError::Refused {
                    operation: "check",
                    key: String::new(),
                    message: format!(
                        "bucket {:?} does not exist: run `darkroom setup --backend aws` or set --bucket",
                        self.bucket
                    ),
                }),
                other => Err(other),
            },
        }
    }
}

struct S3Upload {
    store: S3Store,
    key: String,
    content_type: String,
    buffer: BytesMut,
    /// Set once the upload outgrows one part and becomes a multipart upload.
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    size: u64,
}

impl S3Upload {
    async fn send_part(&mut self) -> Result<(), StoreError> {
        let (client, bucket, key) = (&self.store.client, &self.store.bucket, &self.key);
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = client
                    .create_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .content_type(&self.content_type)
                    .send()
                    .await
                    .map_err(|e| classify("upload", key, bucket, e))?;
                let id = created.upload_id().unwrap_or_default().to_owned();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let part_number = self.parts.len() as i32 + 1;
        let body = self.buffer.split().freeze();
        let uploaded = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .part_number(part_number)
            .body(SdkByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify("upload", key, bucket, e))?;
        self.parts.push(
            CompletedPart::builder().part_number(part_number).set_e_tag(uploaded.e_tag().map(str::to_owned)).build(),
        );
        Ok(())
    }
}

#[async_trait]
impl Upload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.size += chunk.len() as u64;
        self.buffer.extend_from_slice(&chunk);
        if self.buffer.len() >= PART_BYTES {
            self.send_part().await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        let Some(upload_id) = self.upload_id.clone() else {
            // Small enough for one PutObject.
            let body = self.buffer.split().freeze();
            self.store.put(&self.key, body, &self.content_type).await?;
            return Ok(self.size);
        };
        if !self.buffer.is_empty() {
            self.send_part().await?;
        }
        let parts = CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.parts))).build();
        self.store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|e| classify("upload", &self.key, &self.store.bucket, e))?;
        self.upload_id = None;
        Ok(self.size)
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(upload_id) = self.upload_id.take() {
            let _ = self
                .store
                .client
                .abort_multipart_upload()
                .bucket(&self.store.bucket)
                .key(&self.key)
                .upload_id(upload_id)
                .send()
                .await;
        }
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        // An unfinished multipart upload (the client went away) is aborted so S3 does not
        // keep — and bill — its parts.
        if let (Some(upload_id), Ok(runtime)) = (self.upload_id.take(), tokio::runtime::Handle::try_current()) {
            let (client, bucket, key) = (self.store.client.clone(), self.store.bucket.clone(), self.key.clone());
            runtime.spawn(async move {
                let _ = client.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id).send().await;
            });
        }
    }
}
