DROP TABLE viewer_oidc_states;
