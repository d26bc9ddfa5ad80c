"""Infrastructure shared by every module: database, access, audit, jobs, mail, security."""
