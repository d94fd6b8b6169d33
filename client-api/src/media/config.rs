//! The media repository's configuration as clients see it (`m.upload.size`).

use hearth_core::Homeserver;
use ruma::{
    UInt,
    api::client::{authenticated_media, media},
};

use crate::{error::Result, ruma_wrapper::Ruma};

fn upload_size(hs: &Homeserver) -> UInt {
    UInt::try_from(hs.config().limits.max_upload_bytes).unwrap_or(UInt::MAX)
}

/// `GET /_matrix/client/v1/media/config`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1mediaconfig>
pub async fn config(
    hs: Homeserver,
    _req: Ruma<authenticated_media::get_media_config::v1::Request>,
) -> Result<authenticated_media::get_media_config::v1::Response> {
    Ok(authenticated_media::get_media_config::v1::Response::new(upload_size(&hs)))
}

/// `GET /_matrix/media/v3/config` (deprecated, still called by clients)
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixmediav3config>
#[allow(deprecated)]
pub async fn legacy_config(
    hs: Homeserver,
    _req: Ruma<media::get_media_config::v3::Request>,
) -> Result<media::get_media_config::v3::Response> {
    Ok(media::get_media_config::v3::Response::new(upload_size(&hs)))
}
