//! Thumbnails (spec: `GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}`): made
//! with the `image` crate on the blocking pool, stored like media and remembered per (media,
//! size, method) in `media_thumbnails`, so each is made once.
//!
//! Untrusted images are decoded carefully: only PNG, JPEG, GIF and WebP (the formats compiled
//! in), recognised by their bytes; images whose header claims more than [`MAX_PIXELS`] are refused
//! before decoding, and the decoder's allocations are capped. An animated GIF gives its first
//! frame.

use std::{io::Cursor, path::PathBuf};

use anyhow::Context;
use http::StatusCode;
use image::{
    DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits,
    codecs::{jpeg::JpegEncoder, png::PngEncoder},
    imageops::FilterType,
};
use ruma::{ServerName, api::error::ErrorKind};

use super::{
    download::{self, Download},
    sizing::{self, Method, Plan},
};
use crate::{
    Error, Homeserver, Result,
    storage::media::{self, Content, ThumbnailKey},
    time::now_ms,
};

/// Images larger than this many pixels (32 megapixels) are not thumbnailed.
pub const MAX_PIXELS: u64 = 32_000_000;

/// A thumbnail request after parsing.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// Requested width (at least 1).
    pub width: u32,
    /// Requested height (at least 1).
    pub height: u32,
    /// Crop or scale.
    pub method: Method,
}

impl Request {
    /// Reads the query of a thumbnail endpoint: `scale` unless `crop` is asked for, any other
    /// method 400 `M_INVALID_PARAM`.
    pub fn parse(
        width: ruma::UInt,
        height: ruma::UInt,
        method: Option<&ruma::media::Method>,
    ) -> Result<Request> {
        let method = match method {
            None | Some(ruma::media::Method::Scale) => Method::Scale,
            Some(ruma::media::Method::Crop) => Method::Crop,
            Some(other) => {
                return Err(Error::invalid_param(format!("Unknown thumbnail method {:?}", other.as_str())));
            }
        };
        let side = |n: ruma::UInt| u32::try_from(u64::from(n)).unwrap_or(u32::MAX);
        Ok(Request { width: side(width), height: side(height), method })
    }
}

/// A thumbnail of `content` (the media `server_name`/`media_id`), from the cache or made now.
/// Content that is not an image is 400 `M_UNKNOWN`, an image too large to decode 413
/// `M_TOO_LARGE`.
pub async fn get(
    hs: &Homeserver,
    server_name: &ServerName,
    media_id: &str,
    content: Content,
    request: Request,
) -> Result<Download> {
    if request.width == 0 || request.height == 0 {
        return Err(Error::invalid_param("width and height must be positive"));
    }
    if !content.content_type.starts_with("image/") {
        return Err(cannot_thumbnail());
    }
    let (width, height) = sizing::snap(request.width, request.height);
    let key = ThumbnailKey { server_name, media_id, width, height, method: request.method.as_str() };
    if let Some(thumbnail) = media::get_thumbnail(hs.db().pool(), key).await.context("loading a thumbnail")? {
        return download::open(hs, thumbnail).await;
    }

    let path = hs.media().store().path(&content.sha256)?;
    let rendered = {
        let _permit =
            hs.media().thumbnailers.acquire().await.context("the thumbnailer limit is never closed")?;
        tokio::task::spawn_blocking(move || render(path, (width, height), request.method))
            .await
            .context("thumbnailing task")??
    };
    let thumbnail = match rendered {
        // Remembered too, so the next request does not decode the original again.
        Rendered::Original => content,
        Rendered::Thumbnail { bytes, content_type } => {
            let stored = hs.media().store().put(&bytes).await?;
            Content {
                content_type: content_type.to_owned(),
                filename: None,
                size: stored.size,
                sha256: stored.sha256,
            }
        }
    };
    media::insert_thumbnail(hs.db().pool(), key, &thumbnail, now_ms())
        .await
        .context("recording a thumbnail")?;
    download::open(hs, thumbnail).await
}

fn cannot_thumbnail() -> Error {
    Error::bad_request("Cannot generate thumbnails for the requested content")
}

/// The outcome of [`render`].
enum Rendered {
    /// The original is no larger than the box: serve it.
    Original,
    /// A new image.
    Thumbnail {
        /// Encoded image.
        bytes: Vec<u8>,
        /// Its type: `image/jpeg` for JPEG originals (photos), `image/png` otherwise (keeps
        /// transparency).
        content_type: &'static str,
    },
}

/// Decodes the original at `path` and makes the thumbnail for the box `target` (blocking).
fn render(path: PathBuf, target: (u32, u32), method: Method) -> Result<Rendered> {
    let mut reader = ImageReader::open(&path)
        .with_context(|| format!("opening media file {}", path.display()))?
        .with_guessed_format()
        .context("reading an image header")?;
    let format = reader.format().ok_or_else(cannot_thumbnail)?;
    if ![ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::WebP].contains(&format) {
        return Err(cannot_thumbnail());
    }
    let mut limits = Limits::default();
    // Four 16-bit channels per pixel at most.
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(|_| cannot_thumbnail())?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Error::matrix(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::TooLarge,
            "The image is too large to thumbnail",
        ));
    }
    let plan = sizing::plan((width, height), target, method);
    if plan == Plan::Original {
        return Ok(Rendered::Original);
    }
    let image = DynamicImage::from_decoder(decoder).map_err(|_| cannot_thumbnail())?;
    let thumbnail = match plan {
        Plan::Original => image,
        Plan::Resize { width, height } => image.resize_exact(width, height, FilterType::CatmullRom),
        Plan::ResizeCrop { scaled, crop: (x, y, w, h) } => {
            let scaled = if scaled == (width, height) {
                image
            } else {
                image.resize_exact(scaled.0, scaled.1, FilterType::CatmullRom)
            };
            scaled.crop_imm(x, y, w, h)
        }
    };
    encode(&thumbnail, format == ImageFormat::Jpeg)
}

fn encode(image: &DynamicImage, jpeg: bool) -> Result<Rendered> {
    let mut bytes = Cursor::new(Vec::new());
    let content_type = if jpeg {
        DynamicImage::ImageRgb8(image.to_rgb8())
            .write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, 80))
            .context("encoding a JPEG thumbnail")?;
        "image/jpeg"
    } else {
        image.write_with_encoder(PngEncoder::new(&mut bytes)).context("encoding a PNG thumbnail")?;
        "image/png"
    };
    Ok(Rendered::Thumbnail { bytes: bytes.into_inner(), content_type })
}
