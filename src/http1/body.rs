//! Request bodies: decoded from the connection's bytes (by `Content-Length` or chunked) by the
//! connection task while the handler runs, and handed to the handler a chunk at a time through a
//! one-slot channel, so a slow reader holds back the client instead of filling memory.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::{net::TcpStream, sync::mpsc};

use super::head::BodyKind;

/// The most bytes read from the socket at once for a body.
const READ_CHUNK: usize = 16 * 1024;
/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// The handler's side: the chunks the connection task decodes.
struct Incoming {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    remaining: Option<u64>,
}

impl http_body::Body for Incoming {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let Poll::Ready(chunk) = self.rx.poll_recv(cx) else { return Poll::Pending };
        if let (Some(Ok(data)), Some(remaining)) = (&chunk, &mut self.remaining) {
            *remaining = remaining.saturating_sub(data.len() as u64);
        }
        Poll::Ready(chunk.map(|chunk| chunk.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        self.remaining.map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    Done,
    /// Malformed, or the connection ended early: the connection cannot carry another request.
    Failed,
}

/// One step of decoding.
enum Step {
    Chunk(Bytes),
    NeedMore,
    Done,
    Invalid,
}

/// The connection's side: decodes the body and feeds the handler.
pub(super) struct Feeder {
    state: State,
    tx: Option<mpsc::Sender<io::Result<Bytes>>>,
}

/// A body of `kind` for the handler, and the feeder that fills it.
pub(super) fn channel(kind: BodyKind) -> (Body, Feeder) {
    let state = match kind {
        BodyKind::Empty => return (Body::empty(), Feeder { state: State::Done, tx: None }),
        BodyKind::Length(n) => State::Length(n),
        BodyKind::Chunked => State::ChunkSize,
    };
    let (tx, rx) = mpsc::channel(1);
    let remaining = match kind {
        BodyKind::Length(n) => Some(n),
        _ => None,
    };
    (Body::new(Incoming { rx, remaining }), Feeder { state, tx: Some(tx) })
}

impl Feeder {
    /// Whether the body has been read to its end (so the next request's bytes follow).
    pub fn finished(&self) -> bool {
        self.state == State::Done
    }

    /// Whether there is more to feed: the body is unfinished and the handler still holds it.
    pub fn feeding(&self) -> bool {
        self.tx.is_some() && !matches!(self.state, State::Done | State::Failed)
    }

    /// Decodes and hands over the next chunk, reading from `stream` as needed. Cancel-safe: a
    /// chunk is taken from `pending` only when the channel has room for it.
    pub async fn feed(&mut self, stream: &TcpStream, pending: &mut Vec<u8>) {
        let Some(tx) = self.tx.clone() else { return };
        let Ok(permit) = tx.reserve().await else {
            // The handler dropped the body; what is left is skipped if it has already arrived.
            self.tx = None;
            return;
        };
        loop {
            match self.step(pending) {
                Step::Chunk(data) => return permit.send(Ok(data)),
                Step::Done => {
                    self.tx = None;
                    return;
                }
                Step::Invalid => return self.fail(permit, "malformed chunked body"),
                Step::NeedMore => {}
            }
            if stream.readable().await.is_err() {
                return self.fail(permit, "connection lost");
            }
            if pending.capacity() == pending.len() {
                pending.reserve(READ_CHUNK);
            }
            match stream.try_read_buf(pending) {
                Ok(0) => return self.fail(permit, "the client closed the connection mid-body"),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return self.fail(permit, "connection lost"),
            }
        }
    }

    fn fail(&mut self, permit: mpsc::Permit<'_, io::Result<Bytes>>, why: &str) {
        self.state = State::Failed;
        permit.send(Err(io::Error::new(io::ErrorKind::InvalidData, why)));
        self.tx = None;
    }

    /// Skips the rest of a body the handler did not read, as far as it has already arrived.
    pub fn skip_received(&mut self, pending: &mut Vec<u8>) {
        self.tx = None;
        while !matches!(self.state, State::Done | State::Failed) {
            match self.step(pending) {
                Step::Chunk(_) | Step::Done => {}
                Step::NeedMore => return,
                Step::Invalid => {}
            }
        }
    }

    /// Decodes what `pending` holds as far as the next chunk.
    fn step(&mut self, pending: &mut Vec<u8>) -> Step {
        let step = self.decode(pending);
        if let Step::Invalid = step {
            self.state = State::Failed;
        }
        step
    }

    fn decode(&mut self, pending: &mut Vec<u8>) -> Step {
        loop {
            match self.state {
                State::Done => return Step::Done,
                State::Failed => return Step::Invalid,
                State::Length(0) => self.state = State::Done,
                State::Length(_) | State::ChunkData(_) if pending.is_empty() => return Step::NeedMore,
                State::Length(n) | State::ChunkData(n) => {
                    let take = pending.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                    let data = Bytes::copy_from_slice(&pending[..take]);
                    pending.drain(..take);
                    let left = n - take as u64;
                    self.state = match self.state {
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                    return Step::Chunk(data);
                }
                State::ChunkEnd => {
                    if pending.len() < 2 {
                        return Step::NeedMore;
                    }
                    if &pending[..2] != b"\r\n" {
                        return Step::Invalid;
                    }
                    pending.drain(..2);
                    self.state = State::ChunkSize;
                }
                State::ChunkSize | State::Trailers => {
                    let Some(end) = pending.windows(2).position(|w| w == b"\r\n") else {
                        return if pending.len() > MAX_LINE { Step::Invalid } else { Step::NeedMore };
                    };
                    let line: Vec<u8> = pending.drain(..end + 2).take(end).collect();
                    self.state = match (self.state, chunk_size(&line)) {
                        (State::Trailers, _) if line.is_empty() => State::Done,
                        (State::Trailers, _) => State::Trailers,
                        (_, Some(0)) => State::Trailers,
                        (_, Some(n)) => State::ChunkData(n),
                        (_, None) => return Step::Invalid,
                    };
                }
            }
        }
    }
}

/// The size on a chunk-size line (hex, before any `;extension`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let hex = line.split(|b| *b == b';').next()?.trim_ascii();
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` completely (as far as it goes) and returns the data and the final state.
    fn decode(kind: BodyKind, wire: &[u8]) -> (Vec<u8>, State, Vec<u8>) {
        let (_body, mut feeder) = channel(kind);
        let mut pending = wire.to_vec();
        let mut data = Vec::new();
        loop {
            match feeder.step(&mut pending) {
                Step::Chunk(chunk) => data.extend_from_slice(&chunk),
                Step::Done | Step::NeedMore | Step::Invalid => return (data, feeder.state, pending),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_and_leave_the_next_request() {
        let wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nGET /next";
        let (data, state, rest) = decode(BodyKind::Chunked, wire);
        assert_eq!(
            (data.as_slice(), state, rest.as_slice()),
            (&b"Wikipedia"[..], State::Done, &b"GET /next"[..])
        );
    }

    #[test]
    fn a_partial_chunk_waits_for_more() {
        let (data, state, _) = decode(BodyKind::Chunked, b"a\r\n01234");
        assert_eq!((data.as_slice(), state), (&b"01234"[..], State::ChunkData(5)));
    }

    #[test]
    fn malformed_chunks_are_refused() {
        assert_eq!(decode(BodyKind::Chunked, b"zz\r\n").1, State::Failed);
        assert_eq!(decode(BodyKind::Chunked, b"1\r\nab\r\n").1, State::Failed);
    }

    #[test]
    fn a_length_body_stops_at_its_length() {
        let (data, state, rest) = decode(BodyKind::Length(3), b"abcGET");
        assert_eq!((data.as_slice(), state, rest.as_slice()), (&b"abc"[..], State::Done, &b"GET"[..]));
    }
}
