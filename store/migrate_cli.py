"""`python -m store.migrate_cli`: bring the configured database to the newest schema."""

from config.settings import get_settings
from store.migrate import upgrade

if __name__ == "__main__":
    url = get_settings().database_url
    upgrade(url)
    print(f"database migrated: {url}")
