//! Files with their tenant: per-tenant storage over [`object_store`], each tenant under a
//! prefix derived from its registry id ([`Tenant::id`]), never its schema name.
//!
//! The local filesystem is the default ([`TenantFiles::local`]); any S3-compatible store
//! (Amazon S3, MinIO, R2, ...) comes with the `s3` feature (`TenantFiles::s3_from_env`),
//! and any other `object_store` backend through [`TenantFiles::new`].
//!
//! Keys are the application's text, checked before any store is asked ([`check_key`]): `/`
//! separates folders; keys that could climb out of the tenant's prefix or mean something else
//! on some store are refused with [`Error::InvalidKey`]: `..` and `.` segments, absolute paths,
//! empty segments (`a//b`, trailing `/`), backslashes, `%` (so no encoded separator such as
//! `%2F` or `%2E%2E`), NUL and other control characters, and over-long keys.
//!
//! ```no_run
//! use tenantry_files::TenantFiles;
//! # async fn demo(tenant: &tenantry_core::Tenant) -> Result<(), tenantry_files::Error> {
//! let files = TenantFiles::local("/var/lib/app/files")?;
//! let store = files.for_tenant(tenant);
//! store.put("invoices/2026-11.pdf", b"%PDF-1.7 ...".to_vec()).await?;
//! assert!(store.get("invoices/2026-11.pdf").await?.is_some());
//! assert!(store.get("../other/secret").await.is_err()); // refused, never looked up
//! # Ok(())
//! # }
//! ```
//!
//! # Deletion and renames
//!
//! [`TenantFiles::drop_tenant`] deletes everything under a tenant's prefix. Register
//! [`FilesHooks`] (a [`TenantHooks`](tenantry_sqlx::TenantHooks) adapter around the
//! application's own hooks) to run it from `after_delete`, once the deletion has committed, or
//! call it after `admin().delete_tenant(...)` has returned; never from `before_delete`, which
//! runs inside the deletion's transaction (a rolled-back deletion would have lost the files).
//! Registry ids are never reused, so files left by a failed drop are unreachable by any other
//! tenant; call it again to remove them.
//!
//! A rename changes the schema name, not the id: the tenant keeps its files (nothing moves),
//! and the tenant that later takes the old name starts with none.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tenantry_core::Tenant;

mod hooks;

pub use hooks::FilesHooks;

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Longest folder or file name (one `/`-separated segment), in bytes: common filesystems'
/// limit.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// Errors of the file storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key was refused before any store was asked.
    #[error("invalid file key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given (cut to 100 characters).
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The store failed.
    #[error("file store: {0}")]
    Store(#[from] object_store::Error),
    /// The local directory could not be created.
    #[error("file directory {path}: {source}")]
    Directory {
        /// The directory.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Result of the file storage's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks an application key (see the crate documentation for the rules); [`Error::InvalidKey`]
/// says why a key is refused.
pub fn check_key(key: &str) -> Result<()> {
    let refuse = |reason| {
        Err(Error::InvalidKey {
            key: key.chars().take(100).collect(),
            reason,
        })
    };
    if key.is_empty() {
        return refuse("the key is empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return refuse("the key is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return refuse("absolute paths are refused");
    }
    if key.contains('\\') {
        return refuse("backslashes are refused (a separator on Windows)");
    }
    if key.contains('%') {
        return refuse("'%' is refused (no percent-encoded text such as %2F)");
    }
    if key.contains('\0') {
        return refuse("NUL characters are refused");
    }
    if key.chars().any(char::is_control) {
        return refuse("control characters are refused");
    }
    for segment in key.split('/') {
        match segment {
            "" => return refuse("empty segments ('a//b', a trailing '/') are refused"),
            "." | ".." => return refuse("'.' and '..' segments are refused"),
            s if s.len() > MAX_SEGMENT_BYTES => {
                return refuse("a segment is longer than 255 bytes");
            }
            _ => {}
        }
    }
    Ok(())
}

/// The files of every tenant, on one store. Cheap to clone.
#[derive(Clone)]
pub struct TenantFiles {
    store: Arc<dyn ObjectStore>,
    root: Option<String>,
}

impl fmt::Debug for TenantFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantFiles")
            .field("store", &self.store.to_string())
            .field("root", &self.root)
            .finish()
    }
}

impl TenantFiles {
    /// Files under the local directory `dir` (created if missing). Empty folders are removed
    /// when their last file is deleted.
    pub fn local(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Directory {
            path: dir.to_owned(),
            source,
        })?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?
            .with_automatic_cleanup(true);
        Ok(Self::new(Arc::new(store)))
    }

    /// Files in the S3 bucket `bucket`, configured from the `AWS_*` environment variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and `AWS_ENDPOINT` for
    /// S3-compatible stores such as MinIO; see `object_store`'s `AmazonS3Builder::from_env`).
    #[cfg(feature = "s3")]
    pub fn s3_from_env(bucket: &str) -> Result<Self> {
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()?;
        Ok(Self::new(Arc::new(store)))
    }

    /// Files on any `object_store` backend.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store, root: None }
    }

    /// The same store with every tenant's prefix under `root` (a key by [`check_key`]'s rules,
    /// e.g. `"my-app/uploads"`): several applications share one bucket.
    pub fn root(mut self, root: &str) -> Result<Self> {
        check_key(root)?;
        self.root = Some(root.to_owned());
        Ok(self)
    }

    /// The files of `tenant`, under its registry id's prefix.
    pub fn for_tenant(&self, tenant: &Tenant) -> TenantStorage {
        self.for_tenant_id(tenant.id)
    }

    /// The files of the tenant with registry id `id`.
    pub fn for_tenant_id(&self, id: i64) -> TenantStorage {
        let prefix = match &self.root {
            Some(root) => format!("{root}/tenant-{id}"),
            None => format!("tenant-{id}"),
        };
        TenantStorage {
            store: self.store.clone(),
            prefix,
            tenant_id: id,
        }
    }

    /// Deletes every file of the tenant with registry id `id`; returns how many.
    pub async fn drop_tenant(&self, id: i64) -> Result<u64> {
        let storage = self.for_tenant_id(id);
        let prefix = Path::from(storage.prefix.as_str());
        let paths: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        let mut removed = 0;
        for path in paths {
            match self.store.delete(&path).await {
                Ok(()) => removed += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(removed)
    }
}

/// One tenant's files: every key is checked, then placed under the tenant's prefix. From
/// [`TenantFiles::for_tenant`].
#[derive(Clone)]
pub struct TenantStorage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    tenant_id: i64,
}

impl fmt::Debug for TenantStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantStorage")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl TenantStorage {
    /// The registry id of the tenant.
    pub fn tenant_id(&self) -> i64 {
        self.tenant_id
    }

    /// The store path of `key`, after [`check_key`].
    pub fn path(&self, key: &str) -> Result<Path> {
        check_key(key)?;
        // The checks above leave nothing `Path::parse` would refuse; mapped anyway.
        Path::parse(format!("{}/{key}", self.prefix)).map_err(|_| Error::InvalidKey {
            key: key.chars().take(100).collect(),
            reason: "not a valid object path",
        })
    }

    /// Stores `bytes` at `key`, replacing what was there.
    pub async fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<()> {
        let path = self.path(key)?;
        self.store
            .put(&path, PutPayload::from_bytes(bytes.into()))
            .await?;
        Ok(())
    }

    /// The bytes at `key`, or `None` if there is no such file.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let path = self.path(key)?;
        match self.store.get(&path).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the file at `key`; no error if there is none.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The keys of this tenant's files under the folder `folder` (all of them with `None`),
    /// sorted.
    pub async fn list(&self, folder: Option<&str>) -> Result<Vec<String>> {
        let base = match folder {
            Some(folder) => self.path(folder)?,
            None => Path::from(self.prefix.as_str()),
        };
        let strip = format!("{}/", self.prefix);
        let mut keys: Vec<String> = self
            .store
            .list(Some(&base))
            .map_ok(|meta| {
                let raw = meta.location.as_ref();
                raw.strip_prefix(&strip).unwrap_or(raw).to_owned()
            })
            .try_collect()
            .await?;
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::check_key;

    #[test]
    fn keys_that_climb_are_refused() {
        for bad in [
            "",
            "..",
            ".",
            "../x",
            "a/../../x",
            "a/./b",
            "/etc/passwd",
            "a//b",
            "a/",
            "a\\..\\b",
            "..\\x",
            "%2e%2e/x",
            "a%2Fb",
            "a%5cb",
            "a\0b",
            "a\nb",
            &"x".repeat(1025),
            &"x".repeat(256),
        ] {
            assert!(check_key(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "a",
            "a/b.txt",
            "...",
            "a..b",
            "é🦀",
            "report 2026.pdf",
            ".hidden",
        ] {
            assert!(check_key(good).is_ok(), "{good:?} refused");
        }
    }
}
