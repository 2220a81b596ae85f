DROP TABLE viewer_sessions;
