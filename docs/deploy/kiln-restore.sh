#!/bin/sh
# Restore Kiln from kiln-backup.sh's DEST into the database of DATABASE_URL (an empty database,
# created beforehand: createdb) and the bucket of KILN_S3_* (docs/deploy.md, "Backup and restore").
# Stop every Kiln process first (web, workers, beat); start them after this has said "restored".
#
#   kiln-restore.sh SOURCE
set -eu
src=${1:?usage: kiln-restore.sh SOURCE}
here=$(dirname "$0")
. "$here/kiln-rclone.sh"

case $src in
  *:*) dump=$(mktemp -d)/kiln.dump; rclone copyto "$src/kiln.dump" "$dump" ;;
  *) dump=$src/kiln.dump ;;
esac
pg_restore --no-owner --exit-on-error --dbname="$(kiln_libpq_url)" "$dump"
rclone copy --s3-no-check-bucket "$src/media" "$(kiln_rclone_media)"
cd "${KILN_DIR:-$here/../..}"
"${PYTHON:-.venv/bin/python}" manage.py migrate --noinput
"${PYTHON:-.venv/bin/python}" manage.py credits verify
echo "kiln-restore: restored from $src"
