//! S3 stores over `aws-sdk-s3`. Credentials, region and endpoint follow the SDK's own
//! conventions (environment, profile, instance role; `AWS_REGION`, `AWS_ENDPOINT_URL`),
//! with a run config's `[s3]` section on top. Every request goes through the SDK's
//! standard retry mode (exponential backoff with jitter on throttling, 5xx and connection
//! errors); callers that must not give up (the run mirror) retry whole operations again.

use super::StoreError;
use super::{Entry, Location, Objects, S3Settings, join_key};
use anyhow::Context;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use std::time::Duration;

/// Files at least this large go up in parts.
pub const MULTIPART_THRESHOLD: u64 = 16 << 20;
/// The part size of multipart uploads (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 << 20;

/// An S3 bucket and prefix.
pub struct S3Objects {
    client: aws_sdk_s3::Client,
    rt: tokio::runtime::Runtime,
    bucket: String,
    prefix: String,
}

impl std::fmt::Debug for S3Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Objects(s3://{}/{})", self.bucket, self.prefix)
    }
}

/// The HTTP status of a failed request's response, when one came back.
fn http_status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

impl S3Objects {
    /// A conditional PUT: `If-Match: tag`, or `If-None-Match: *` without a tag. The new
    /// ETag, or `None` when the condition failed (412); `If-Match` on a missing key (404)
    /// is [`StoreError::Vanished`]. A 409 (another conditional write to the key in flight) is retried, as S3 asks.
    fn conditional_put(&self, key: &str, data: &[u8], tag: Option<&str>) -> anyhow::Result<Option<String>> {
        let what = if tag.is_some() { "conditional PUT (If-Match)" } else { "conditional PUT" };
        self.rt.block_on(async {
            for attempt in 0..8 {
                let req = self.client.put_object().bucket(&self.bucket).key(self.key(key)).body(ByteStream::from(data.to_vec()));
                let req = match tag {
                    Some(t) => req.if_match(t),
                    None => req.if_none_match("*"),
                };
                match req.send().await {
                    Ok(o) => return Ok(Some(o.e_tag().unwrap_or_default().to_string())),
                    Err(e) if http_status(&e) == Some(412) => return Ok(None),
                    // If-Match on a key that is gone (not a bucket that is gone: `fail` says so).
                    Err(e) if tag.is_some() && http_status(&e) == Some(404) && e.code() != Some("NoSuchBucket") => {
                        return Err(StoreError::Vanished(self.url(key)).into());
                    }
                    Err(e) if http_status(&e) == Some(409) && attempt < 7 => {
                        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                    }
                    Err(e) => return Err(self.fail(what, key, e)),
                }
            }
            unreachable!("the loop returns on its last attempt")
        })
    }
    /// A client for `s3://bucket/prefix`.
    pub fn connect(bucket: &str, prefix: &str, settings: &S3Settings) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("failed to start the S3 client's runtime")?;
        let endpoint = settings
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        let region = settings.region.clone();
        let shared = rt.block_on(async {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(r) = region {
                loader = loader.region(aws_config::Region::new(r));
            }
            loader.load().await
        });
        let mut b = aws_sdk_s3::config::Builder::from(&shared)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(settings.max_attempts.unwrap_or(4).max(1)))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(120))
                    .build(),
            );
        if shared.region().is_none() {
            b = b.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(e) = &endpoint {
            b = b.endpoint_url(e);
        }
        b = b.force_path_style(settings.path_style.unwrap_or(endpoint.is_some()));
        Ok(S3Objects { client: aws_sdk_s3::Client::from_conf(b.build()), rt, bucket: bucket.into(), prefix: prefix.into() })
    }

    fn key(&self, key: &str) -> String {
        join_key(&self.prefix, key)
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(key))
    }

    /// The error of a failed request: a bucket that is gone and refused credentials as their
    /// [`StoreError`]; a service error as its code and message; a transport failure (no
    /// answer) with its causes. The SDK's whole structure only with `PADDOCK_DEBUG_SDK=1`.
    fn fail<E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static>(
        &self,
        what: &str,
        key: &str,
        e: SdkError<E, HttpResponse>,
    ) -> anyhow::Error {
        let url = self.url(key);
        let status = http_status(&e);
        let code = e.code().map(str::to_string);
        if code.as_deref() == Some("NoSuchBucket") {
            return StoreError::NoBucket(format!("s3://{}", self.bucket)).into();
        }
        const DENIED: [&str; 6] =
            ["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"];
        if status == Some(403) || code.as_deref().is_some_and(|c| DENIED.contains(&c)) {
            return StoreError::Denied {
                location: format!("S3 {what} {url}"),
                code: code.unwrap_or_else(|| "HTTP 403".into()),
                message: e.message().unwrap_or("no message").to_string(),
                who: super::credentials_in_use(),
            }
            .into();
        }
        if std::env::var_os("PADDOCK_DEBUG_SDK").is_some() {
            return anyhow::anyhow!("S3 {what} {url} failed: {}", DisplayErrorContext(&e));
        }
        match (code, e.message()) {
            (Some(c), m) => anyhow::anyhow!(
                "S3 {what} {url} failed: {c}: {}{}",
                m.unwrap_or(""),
                status.map_or(String::new(), |s| format!(" (HTTP {s})"))
            ),
            (None, _) => anyhow::anyhow!("S3 {what} {url} failed: {}", DisplayErrorContext(&e)),
        }
    }

    async fn put_multipart(&self, key: &str, mut source: impl std::io::Read) -> anyhow::Result<()> {
        let full = self.key(key);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.fail("multipart start", key, e))?;
        let id = created.upload_id().context("S3 gave no multipart upload id")?.to_string();
        let result: anyhow::Result<()> = async {
            let mut parts = Vec::new();
            for n in 1.. {
                let mut buf = vec![0u8; PART_SIZE];
                let mut filled = 0;
                while filled < PART_SIZE {
                    let k = source.read(&mut buf[filled..])?;
                    if k == 0 {
                        break;
                    }
                    filled += k;
                }
                if filled == 0 {
                    break;
                }
                buf.truncate(filled);
                let up = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(&full)
                    .upload_id(&id)
                    .part_number(n)
                    .body(ByteStream::from(buf))
                    .send()
                    .await
                    .map_err(|e| self.fail(&format!("upload of part {n} of"), key, e))?;
                parts.push(CompletedPart::builder().part_number(n).set_e_tag(up.e_tag().map(String::from)).build());
                if filled < PART_SIZE {
                    break;
                }
            }
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(&full)
                .upload_id(&id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(|e| self.fail("multipart completion of", key, e))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            // Nothing half-written becomes visible: an unfinished multipart upload is no object.
            let _ = self.client.abort_multipart_upload().bucket(&self.bucket).key(&full).upload_id(&id).send().await;
        }
        result
    }
}

impl Objects for S3Objects {
    fn location(&self) -> Location {
        Location::S3 { bucket: self.bucket.clone(), prefix: self.prefix.clone() }
    }

    fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.get_tagged(key)?.map(|(data, _)| data))
    }

    fn put(&self, key: &str, data: &[u8]) -> anyhow::Result<()> {
        if data.len() as u64 >= MULTIPART_THRESHOLD {
            return self.rt.block_on(self.put_multipart(key, data));
        }
        self.rt.block_on(async {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(self.key(key))
                .body(ByteStream::from(data.to_vec()))
                .send()
                .await
                .map_err(|e| self.fail("PUT", key, e))?;
            Ok(())
        })
    }

    fn put_new(&self, key: &str, data: &[u8]) -> anyhow::Result<bool> {
        Ok(self.conditional_put(key, data, None)?.is_some())
    }

    fn create_tagged(&self, key: &str, data: &[u8]) -> anyhow::Result<Option<String>> {
        // The tag of the PUT that created it: a GET after it could return a later writer's.
        self.conditional_put(key, data, None)
    }

    fn get_tagged(&self, key: &str) -> anyhow::Result<Option<(Vec<u8>, String)>> {
        self.rt.block_on(async {
            match self.client.get_object().bucket(&self.bucket).key(self.key(key)).send().await {
                Ok(o) => {
                    // S3 sends an ETag with every object; a server that does not gets an empty tag (no conditional write can match it).
                    let tag = o.e_tag().unwrap_or_default().to_string();
                    let data = o.body.collect().await.with_context(|| format!("S3 GET {} broke off", self.url(key)))?;
                    Ok(Some((data.into_bytes().to_vec(), tag)))
                }
                Err(e)
                    if e.code() != Some("NoSuchBucket")
                        && (e.as_service_error().is_some_and(|s| s.is_no_such_key()) || http_status(&e) == Some(404)) =>
                {
                    Ok(None)
                }
                Err(e) => Err(self.fail("GET", key, e)),
            }
        })
    }

    fn put_if_match(&self, key: &str, data: &[u8], tag: &str) -> anyhow::Result<Option<String>> {
        self.conditional_put(key, data, Some(tag))
    }

    fn list(&self, prefix: &str) -> anyhow::Result<Vec<Entry>> {
        let full = super::dir_prefix(&self.key(prefix));
        let strip = if self.prefix.is_empty() { 0 } else { self.prefix.len() + 1 };
        self.rt.block_on(async {
            let mut out = Vec::new();
            let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(&full).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| self.fail("LIST", prefix, e))?;
                for o in page.contents() {
                    if let Some(k) = o.key() {
                        out.push(Entry { key: k[strip.min(k.len())..].to_string(), size: o.size().unwrap_or(0).max(0) as u64 });
                    }
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
    }

    fn list_dirs(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let full = super::dir_prefix(&self.key(prefix));
        self.rt.block_on(async {
            let mut out = Vec::new();
            let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(&full).delimiter("/").into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| self.fail("LIST", prefix, e))?;
                for p in page.common_prefixes() {
                    if let Some(name) = p.prefix().and_then(|k| k.strip_prefix(full.as_str())) {
                        out.push(name.trim_end_matches('/').to_string());
                    }
                }
            }
            out.sort();
            Ok(out)
        })
    }

    fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.rt.block_on(async {
            self.client.delete_object().bucket(&self.bucket).key(self.key(key)).send().await.map_err(|e| self.fail("DELETE", key, e))?;
            Ok(())
        })
    }
}
