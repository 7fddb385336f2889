#!/bin/sh
# Back up Kiln: the PostgreSQL database FIRST, then the media bucket (docs/deploy.md, "Backup and restore").
#
#   kiln-backup.sh DEST
#
# DEST: a local folder (or any rclone remote, e.g. offsite:kiln-backups/2026-12-06). It gets
# kiln.dump (pg_dump's custom format) and media/ (the bucket's objects under KILN_S3_PREFIX).
# Reads the environment every Kiln process has: DATABASE_URL and the KILN_S3_* variables.
# FIELD_ENCRYPTION_KEYS is NOT in the backup: keep it apart, or the provider keys are unreadable.
set -eu
umask 077  # the dump holds password hashes, sessions and the encrypted provider keys: its owner's only
dest=${1:?usage: kiln-backup.sh DEST}
here=$(dirname "$0")
. "$here/kiln-rclone.sh"

# 1. The database: one consistent snapshot, Kiln keeps running. Every media row in it points to an
#    object that already exists (Kiln stores a file before the row that names it).
case $dest in
  *:*) dump=$(mktemp -d)/kiln.dump ;;  # a remote: dump locally, then copy it there
  *) mkdir -p "$dest"; dump=$dest/kiln.dump ;;
esac
pg_dump --format=custom --no-owner --file="$dump" "$(kiln_libpq_url)"

# 2. Then the media: every object the dump refers to is there now. `copy`, never `sync`: an object
#    deleted after the dump must stay in the backup.
rclone copy --s3-no-check-bucket "$(kiln_rclone_media)" "$dest/media"
case $dest in
  *:*) rclone copyto "$dump" "$dest/kiln.dump" && rm -r "$(dirname "$dump")" ;;
esac
echo "kiln-backup: database and media in $dest"
