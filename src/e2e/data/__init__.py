"""Readers for the real data sources in DESIGN.md and for users' own folders.

`e2e data list` (catalog.py) names every source of every application, where it was found,
or the command that installs it. Environment variables move where the readers look:

    variable              default                                    what it points at
    E2E_DATA              ~/.local/share/e2e                         data e2e renders or caches
                                                                     itself (speech corpora,
                                                                     MNIST, the Debian
                                                                     description cache)
    E2E_FASHION_MNIST     /usr/share/datasets/fashion-mnist          Fashion-MNIST IDX files
    E2E_APT_LISTS         /var/lib/apt/lists                         apt's lists, read once into
                                                                     the description cache
    E2E_LOCALE            /usr/share/locale                          gettext catalogs
                                                                     (es/LC_MESSAGES/*.mo)
    E2E_SWORD             /usr/share/sword                           the SWORD Bible modules
    E2E_ASTERISK_SOUNDS   /usr/share/asterisk/sounds/en_US_f_Allison the Asterisk test prompts
    E2E_ASTERISK_TEXT     /usr/share/doc/asterisk-core-sounds-en/    and their transcripts
                          core-sounds-en.txt.gz
    E2E_QUEEN             /usr/share/scummvm/flight-of-the-amazon-   Flight of the Amazon
                          queen/queen.1c                             Queen's voice archive
    E2E_DRASCULA          /usr/share/scummvm/drascula/en             Drascula's clips
    E2E_DRASCULA_DAT      /usr/share/scummvm/drascula.dat            and their lines
    E2E_WARZONE           /usr/share/games/warzone2100/base.wz       Warzone 2100's voices
    E2E_STEEL_SKY         /usr/share/scummvm/beneath-a-steel-sky     Beneath a Steel Sky's
                                                                     sky.dnr and sky.dsk
    E2E_TUXPAINT_STAMPS   /usr/share/tuxpaint/stamps                 Tux Paint's stamps
    E2E_HEDGEWARS         /usr/share/games/hedgewars/Data/Sounds/    Hedgewars' voice packs
                          voices
    E2E_KTUBERLING        /usr/share/ktuberling/sounds               KTuberling's words
"""
