-- Each service owns its database; both live on the compose file's one PostgreSQL server.
CREATE DATABASE auth;
CREATE DATABASE inventory;
