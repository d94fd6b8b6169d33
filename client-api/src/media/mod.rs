//! Content repository (spec: Client-Server API › Content repository): the media configuration,
//! uploads, downloads and thumbnails. Media of other servers will come through federation
//! ([`remote`]); the bytes are served with the headers the spec asks for ([`serve`]).

pub mod config;
pub mod disposition;
pub mod download;
pub mod remote;
pub mod serve;
pub mod upload;
