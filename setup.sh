#!/usr/bin/env bash
# Sets up e2e on a fresh Debian machine: system packages (datasets, tools), then a virtual
# environment in .venv with PyTorch and e2e itself. Safe to run again: it only adds
# what is missing. Usage: bash setup.sh
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages: the datasets and tools the applications and tests read.
APT_PACKAGES=(
  python3-venv           # the virtual environment below
  dataset-fashion-mnist  # vision: Fashion-MNIST, 60k/10k images (IDX files)
  chromium chromium-driver  # serve: headless browser for the demo page's end-to-end test
  espeak-ng              # speech: synthesizer that renders the synthetic training corpus
  asterisk-core-sounds-en-wav  # speech: real human test prompts (8 kHz WAV)
  asterisk-core-sounds-en      # speech: their transcripts (core-sounds-en.txt.gz)
  flite                  # speech: a second synthesizer (kal16, awb, rms, slt voices)
  flight-of-the-amazon-queen  # speech: real voice acting, ~3,700 transcribed clips (freeware)
  drascula               # speech: real voice acting, ~740 clips; the corpus never trained on
  warzone2100-data       # speech: ~15 min of real English speech with text (GPL-2+)
  beneath-a-steel-sky    # speech: real voice acting, ~3,400 lines; English + Spanish text (freeware)
  tuxpaint-stamps-default  # speech: spoken English letters, digits and stamp descriptions (GPL-2+)
  hedgewars-data         # speech: ~440 short phrases by 10 English voice packs (GPL-2, GFDL-1.3)
  ktuberling-data        # speech: 70 spoken English words, one speaker (GPL-2+)
  pocketsphinx pocketsphinx-en-us  # speech: the pretrained HMM recognizer users would pick instead
  sword-text-kjv         # text: King James Bible (SWORD module), translation source side
  sword-text-sparv       # text: Reina-Valera 1909 Spanish Bible, translation target side
  apertium-eng-spa       # text: rule-based English->Spanish translator (stepwise baseline)
  # text: Wesnoth's campaigns, ~13k English->Spanish dialogue and narration lines (.mo
  # catalogs inside each campaign; GPL-2+). With wesnoth-1.16-data: ~290 MB download, ~390 MB
  wesnoth-1.16-did wesnoth-1.16-dm wesnoth-1.16-dw wesnoth-1.16-ei wesnoth-1.16-httt
  wesnoth-1.16-l wesnoth-1.16-low wesnoth-1.16-nr wesnoth-1.16-sof wesnoth-1.16-sota
  wesnoth-1.16-sotbe wesnoth-1.16-thot wesnoth-1.16-trow wesnoth-1.16-tsg wesnoth-1.16-ttb
  wesnoth-1.16-utbs
  debian-handbook        # text: The Debian Administrator's Handbook, en + es pages (GPL-2+)
  debian-reference-en debian-reference-es  # text: the Debian Reference, en + es (GPL-2+)
  gnome-user-docs        # text: GNOME's desktop help, C (English) + es pages (CC-BY-SA-3.0)
  installation-guide-amd64  # text: the Debian installation guide, en + es (GPL-2)
  maint-guide maint-guide-es  # text: the Debian New Maintainers' Guide, en + es (GPL-2+)
)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# text: the summarization corpus is Debian's English package descriptions in apt's index
# (and the Spanish ones, for translation). A plain `apt-get update` deletes them again
# (Acquire::Languages "none"), so they are copied into e2e's own data cache, which e2e reads.
I18N="${E2E_DATA:-$HOME/.local/share/e2e}/debian-i18n"
if ! ls "$I18N"/*_i18n_Translation-en* >/dev/null 2>&1; then
  ls /var/lib/apt/lists/*_i18n_Translation-es* >/dev/null 2>&1 || \
    $SUDO apt-get -o Acquire::Languages=en,es update -qq
  mkdir -p "$I18N"
  cp /var/lib/apt/lists/*_i18n_Translation-en* /var/lib/apt/lists/*_i18n_Translation-es* "$I18N"/
fi

# Python: PyTorch 2.13.0 (CPU build; a GPU machine gets CUDA with the same version), then e2e.
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[all,dev]"  # every application's extra (pyproject.toml)
echo "setup: ready. Python: .venv/bin/python, CLI: .venv/bin/e2e"
