# Sourced by test.sh: the headless browser the report test drives (Debian's chromium + chromium-driver).
# Installed with apt when missing and possible; otherwise that one test skips and says why.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
    echo "installing chromium and chromium-driver for the report's browser test"
    $SUDO apt-get update -q || echo "apt-get update failed: trying the install with the current lists"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver \
      || echo "could not install chromium: the browser test will be skipped (it says why)"
  else
    echo "no apt-get here: the browser test will be skipped unless chromium and chromedriver are on PATH"
  fi
fi
