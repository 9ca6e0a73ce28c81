-- Reference images live beside the jobs, not inside their request JSON: up to three
-- 10 MB images as base64 made every read of a job row (progress, lists, autocomplete)
-- decode about 40 MB. A request now names each image by `ref`, the SHA-256 of its bytes.
-- bot_b64decode and bot_sha256 are registered by bot/store/database.py `migrate`.

CREATE TABLE images (
    sha256     TEXT PRIMARY KEY,          -- hex SHA-256 of data: one copy per distinct image
    mime       TEXT NOT NULL,
    size       INTEGER NOT NULL CHECK (size >= 0),
    created_at TEXT NOT NULL,
    last_used  TEXT NOT NULL,             -- the newest job that asked for it
    data       BLOB NOT NULL              -- last, so reading the other columns skips it
);

CREATE TABLE job_images (
    job_id   INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,            -- index in the request's images
    sha256   TEXT NOT NULL REFERENCES images (sha256) ON DELETE CASCADE,
    PRIMARY KEY (job_id, position)
) WITHOUT ROWID;

CREATE INDEX job_images_by_image ON job_images (sha256, job_id);

-- Move the images already stored inline.
CREATE TEMP TABLE moved_images AS
SELECT job_id, position, mime, created_at, updated_at, data, bot_sha256(data) AS sha256
  FROM (SELECT j.id AS job_id, CAST(i.key AS INTEGER) AS position,
               COALESCE(json_extract(i.value, '$.content_type'), 'image/png') AS mime,
               j.created_at, j.updated_at,
               bot_b64decode(json_extract(i.value, '$.data')) AS data
          FROM jobs AS j, json_each(j.request_json, '$.images') AS i
         WHERE json_type(i.value, '$.data') = 'text');

INSERT INTO images (sha256, mime, size, created_at, last_used, data)
SELECT sha256, mime, length(data), MIN(created_at), MAX(updated_at), data
  FROM moved_images GROUP BY sha256;

INSERT INTO job_images (job_id, position, sha256)
SELECT job_id, position, sha256 FROM moved_images;

UPDATE jobs SET request_json = json_set(request_json, '$.images', json((
    SELECT json_group_array(CASE
               WHEN m.sha256 IS NULL THEN json(i.value)
               ELSE json_set(json_remove(i.value, '$.data'), '$.ref', m.sha256)
           END)
      FROM json_each(jobs.request_json, '$.images') AS i
      LEFT JOIN moved_images AS m ON m.job_id = jobs.id AND m.position = i.key)))
 WHERE id IN (SELECT job_id FROM moved_images);

DROP TABLE moved_images;
