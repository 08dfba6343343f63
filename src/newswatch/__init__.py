"""newswatch: a self-hosted news-monitoring alert daemon."""
