-- The media repository (spec: Client-Server API › Content repository). One row per mxc:// URI.
-- The bytes live on disk, content-addressed by SHA-256 (`<data_dir>/media/ab/cd/<sha256>`), so
-- identical uploads share one file. A URI reserved with POST /media/v1/create has no content
-- yet (`sha256`, `size` and `content_type` NULL) until the PUT, and is dead once
-- `unused_expires_at` has passed. `uploader` is NULL for remote media cached here (later).
CREATE TABLE media (
    server_name       TEXT NOT NULL,
    media_id          TEXT NOT NULL,
    uploader          TEXT,
    content_type      TEXT,
    filename          TEXT,
    size              BIGINT,
    sha256            TEXT,
    created_ts        BIGINT NOT NULL,
    unused_expires_at BIGINT,
    PRIMARY KEY (server_name, media_id)
);
-- Per-user quota (sum of sizes) and the count of pending reservations.
CREATE INDEX media_uploader ON media (uploader);

-- Generated thumbnails, stored like media, one per (media, size, method).
CREATE TABLE media_thumbnails (
    server_name  TEXT NOT NULL,
    media_id     TEXT NOT NULL,
    width        BIGINT NOT NULL,
    height       BIGINT NOT NULL,
    method       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    created_ts   BIGINT NOT NULL,
    PRIMARY KEY (server_name, media_id, width, height, method),
    FOREIGN KEY (server_name, media_id) REFERENCES media (server_name, media_id) ON DELETE CASCADE
);
