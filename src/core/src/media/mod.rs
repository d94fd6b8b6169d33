//! The media repository (spec: Client-Server API › Content repository): uploads, reserved
//! `mxc://` URIs, downloads and thumbnails of local media. The bytes are files in a
//! content-addressed [`store`]; what each URI holds is in the `media` table.
//!
//! Media of other servers is not fetched here (core makes no outbound requests): federation
//! fetches it and caches it through [`remote`].

pub mod download;
pub mod remote;
pub mod sizing;
pub mod store;
pub mod thumbnail;
pub mod upload;

use tokio::sync::Semaphore;

use self::store::MediaStore;

/// The media repository of one homeserver: its file store and the limit on concurrent
/// thumbnailing.
pub struct Media {
    store: MediaStore,
    /// Decoding and resizing images is CPU-bound: at most one per core at a time, so a burst of
    /// thumbnail requests cannot take every blocking thread.
    thumbnailers: Semaphore,
}

impl Media {
    /// Opens (creating if needed) the store under `<data_dir>/media`.
    pub fn open(data_dir: &std::path::Path) -> anyhow::Result<Media> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Ok(Media { store: MediaStore::open(data_dir)?, thumbnailers: Semaphore::new(cores) })
    }

    /// The file store.
    pub fn store(&self) -> &MediaStore {
        &self.store
    }
}

/// Whether `media_id` has only the characters the spec allows (`A-Za-z0-9_-`), so it is safe
/// to use anywhere (the spec's defence against path traversal through `mxc://` URIs).
pub fn is_valid_media_id(media_id: &str) -> bool {
    !media_id.is_empty()
        && media_id.len() <= 255
        && media_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::is_valid_media_id;

    #[test]
    fn media_ids_are_limited_to_url_safe_characters() {
        assert!(is_valid_media_id("AQwafu-aFs_wefu09"));
        assert!(!is_valid_media_id(""));
        assert!(!is_valid_media_id("../../etc/passwd"));
        assert!(!is_valid_media_id("a%2Fb"));
        assert!(!is_valid_media_id("é"));
    }
}
