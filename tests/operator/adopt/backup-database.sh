#!/bin/bash
# The protocol's old backup script, as a deployment has it (test copy: adopt must keep it,
# comment its cron line and disable its pruning; the test never runs it).
set -e
BACKUP_DIR=~/backups
DATE=$(date +%Y%m%d_%H%M%S)
mkdir -p "$BACKUP_DIR"
docker exec lms-postgres pg_dump -U lms_user lms_slncity | gzip > "$BACKUP_DIR/lms_backup_${DATE}.sql.gz"
# keep the last 7 days
find "$BACKUP_DIR" -name "lms_backup_*.sql.gz" -mtime +7 -delete
if [ "$(ls "$BACKUP_DIR" | wc -l)" -gt 30 ]; then
  ls -t "$BACKUP_DIR"/*.sql.gz | tail -n +31 | xargs rm -f
fi
echo "Backup completed: lms_backup_${DATE}.sql.gz"
