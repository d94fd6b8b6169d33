//! Thumbnail geometry (spec: Client-Server API › Content repository › Thumbnails): which size
//! to make for a request, and how to get there from the original without ever upscaling.

/// How a thumbnail relates to the requested box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// Fill the box exactly: scale to cover it, then cut the overflow equally on both sides.
    Crop,
    /// Fit within the box, keeping the original's aspect ratio.
    Scale,
}

impl Method {
    /// The spec's name for it, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Crop => "crop",
            Method::Scale => "scale",
        }
    }
}

/// The sizes the spec suggests servers produce. Requests are snapped to one of them, so each
/// original has at most this many cached thumbnails per method however clients vary their
/// requests.
const SIZES: [(u32, u32); 5] = [(32, 32), (96, 96), (320, 240), (640, 480), (800, 600)];

/// The box to render for a request of `width` × `height`: the smallest suggested size at least
/// as large in both directions (the spec: never smaller than requested), or the largest.
pub fn snap(width: u32, height: u32) -> (u32, u32) {
    SIZES.into_iter().find(|&(w, h)| w >= width && h >= height).unwrap_or(SIZES[SIZES.len() - 1])
}

/// What to do with an original of `original` pixels to answer for the box `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The original already fits: serve it (the spec: return the original rather than
    /// thumbnail content smaller than the request).
    Original,
    /// Resize to exactly this size.
    Resize {
        /// New width.
        width: u32,
        /// New height.
        height: u32,
    },
    /// Resize to `scaled` (possibly unchanged), then cut `crop` = (x, y, width, height) out of it.
    ResizeCrop {
        /// Size after resizing.
        scaled: (u32, u32),
        /// The window kept.
        crop: (u32, u32, u32, u32),
    },
}

/// The plan for `original` = (w, h) into `target` = (tw, th). Never upscales.
pub fn plan(original: (u32, u32), target: (u32, u32), method: Method) -> Plan {
    let ((w, h), (tw, th)) = (original, target);
    if w <= tw && h <= th {
        return Plan::Original;
    }
    let (w64, h64, tw64, th64) = (u64::from(w), u64::from(h), u64::from(tw), u64::from(th));
    // Integer scaling, each side at least 1 pixel; the results are below the original's sides,
    // so they fit in u32.
    let along = |side: u64, num: u64, den: u64| u32::try_from((side * num / den).max(1)).unwrap_or(u32::MAX);
    match method {
        Method::Scale => {
            if tw64 * h64 <= th64 * w64 {
                // Relatively wider than the box: the width binds.
                Plan::Resize { width: tw, height: along(h64, tw64, w64) }
            } else {
                Plan::Resize { width: along(w64, th64, h64), height: th }
            }
        }
        Method::Crop => {
            // Scale so the image covers the box; if that would enlarge it, cut the box out of
            // the original as it is instead.
            let scaled = if w64 * th64 > tw64 * h64 {
                (along(w64, th64, h64), th)
            } else {
                (tw, along(h64, tw64, w64))
            };
            let scaled = if scaled.0 > w || scaled.1 > h { (w, h) } else { scaled };
            let (cw, ch) = (tw.min(scaled.0), th.min(scaled.1));
            Plan::ResizeCrop { scaled, crop: ((scaled.0 - cw) / 2, (scaled.1 - ch) / 2, cw, ch) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_snap_up_to_a_suggested_size() {
        assert_eq!(snap(32, 32), (32, 32));
        assert_eq!(snap(1, 1), (32, 32));
        assert_eq!(snap(33, 10), (96, 96));
        assert_eq!(snap(300, 200), (320, 240));
        assert_eq!(snap(320, 241), (640, 480));
        assert_eq!(snap(5000, 5000), (800, 600));
    }

    #[test]
    fn an_original_that_fits_is_served_as_it_is() {
        assert_eq!(plan((20, 30), (32, 32), Method::Scale), Plan::Original);
        assert_eq!(plan((32, 32), (32, 32), Method::Crop), Plan::Original);
    }

    #[test]
    fn scale_fits_within_the_box_and_keeps_the_aspect_ratio() {
        assert_eq!(plan((200, 100), (32, 32), Method::Scale), Plan::Resize { width: 32, height: 16 });
        assert_eq!(plan((100, 400), (320, 240), Method::Scale), Plan::Resize { width: 60, height: 240 });
        assert_eq!(plan((1000, 1), (32, 32), Method::Scale), Plan::Resize { width: 32, height: 1 });
    }

    #[test]
    fn crop_fills_the_box_exactly_cutting_the_overflow_evenly() {
        assert_eq!(
            plan((200, 100), (32, 32), Method::Crop),
            Plan::ResizeCrop { scaled: (64, 32), crop: (16, 0, 32, 32) }
        );
        assert_eq!(
            plan((100, 400), (96, 96), Method::Crop),
            Plan::ResizeCrop { scaled: (96, 384), crop: (0, 144, 96, 96) }
        );
    }

    #[test]
    fn crop_never_upscales_a_side_smaller_than_the_box() {
        // 200×20 into 96×96: covering would enlarge it, so a 96×20 window is cut out instead.
        assert_eq!(
            plan((200, 20), (96, 96), Method::Crop),
            Plan::ResizeCrop { scaled: (200, 20), crop: (52, 0, 96, 20) }
        );
    }
}
