-- What refined an error code, e.g. which moderation check refused a video
-- ("prompt", "image", "output"), so the job's message can name it in any language.

ALTER TABLE jobs ADD COLUMN error_detail TEXT;
