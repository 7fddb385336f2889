# Sourced by kiln-backup.sh and kiln-restore.sh: rclone and libpq from Kiln's own environment.
#
# Checked here, at the top: a ${VAR:?} inside the $(...) of an argument only ends that subshell, and
# pg_restore would get "" (libpq's default database) and rclone "" (the current folder).
: "${DATABASE_URL:?DATABASE_URL is not set}" "${KILN_S3_BUCKET:?KILN_S3_BUCKET is not set}"

# rclone takes the bucket from KILN_S3_* through its RCLONE_CONFIG_<remote>_* variables, so no
# rclone.conf holding the secret key is written anywhere.
export RCLONE_CONFIG_KILNMEDIA_TYPE=s3
export RCLONE_CONFIG_KILNMEDIA_PROVIDER=${KILN_RCLONE_PROVIDER:-Other}
export RCLONE_CONFIG_KILNMEDIA_ACCESS_KEY_ID=${KILN_S3_ACCESS_KEY_ID:-}
export RCLONE_CONFIG_KILNMEDIA_SECRET_ACCESS_KEY=${KILN_S3_SECRET_ACCESS_KEY:-}
export RCLONE_CONFIG_KILNMEDIA_REGION=${KILN_S3_REGION:-us-east-1}
export RCLONE_CONFIG_KILNMEDIA_ENDPOINT=${KILN_S3_ENDPOINT_URL:-}
# Empty keys: rclone's own credential chain (an instance role, AWS_* variables).
[ -n "${KILN_S3_ACCESS_KEY_ID:-}" ] || export RCLONE_CONFIG_KILNMEDIA_ENV_AUTH=true
# Kiln's "auto"/"path"/"virtual" addressing; path unless virtual is asked for.
if [ "${KILN_S3_ADDRESSING_STYLE:-auto}" = virtual ]; then
  export RCLONE_CONFIG_KILNMEDIA_FORCE_PATH_STYLE=false
else
  export RCLONE_CONFIG_KILNMEDIA_FORCE_PATH_STYLE=true
fi

# The bucket's Kiln objects: the whole bucket, or only KILN_S3_PREFIX when Kiln shares it.
kiln_rclone_media() {
  echo "kilnmedia:${KILN_S3_BUCKET}${KILN_S3_PREFIX:+/$KILN_S3_PREFIX}"
}

# DATABASE_URL without Kiln's own conn_max_age option, which libpq does not know, and without its
# password, which would be on pg_dump's command line for every user of the host to read in `ps`:
# libpq gets it (percent-decoded) from PGPASSWORD.
kiln_libpq_url() {
  echo "$DATABASE_URL" | sed -E 's#^([a-z]+://[^:@/]*):[^@/]*@#\1@#; s/([?&])conn_max_age=[^&]*&?/\1/; s/[?&]$//'
}
kiln_password=$("${PYTHON:-$here/../../.venv/bin/python}" -c \
  'import os, urllib.parse; print(urllib.parse.unquote(urllib.parse.urlsplit(os.environ["DATABASE_URL"]).password or ""))')
[ -z "$kiln_password" ] || export PGPASSWORD="$kiln_password"

# rclone's S3 client cannot take AWS_CA_BUNDLE ("unable to load custom CA bundle, HTTPClient's
# transport unsupported type"): hand the same bundle to rclone's own --ca-cert instead.
if [ -n "${AWS_CA_BUNDLE:-}" ]; then
  export RCLONE_CA_CERT=$AWS_CA_BUNDLE
  unset AWS_CA_BUNDLE
fi
