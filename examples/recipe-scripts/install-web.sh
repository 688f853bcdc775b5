#!/bin/bash
# Installs and enables the web server the image ships with.
set -euo pipefail
dnf install -y nginx
systemctl enable nginx
