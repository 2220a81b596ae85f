ALTER TABLE viewer_sessions DROP COLUMN launch_nhs;
DROP TABLE viewer_launches;
DROP TABLE viewer_launch_jtis;
