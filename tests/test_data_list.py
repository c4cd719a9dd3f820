"""`e2e data list`: every application's sources, installed or with the command that installs
them, answered without loading torch."""


from conftest import heavy_imports, run_cli

from e2e.data import catalog

APPS = ("vision", "speech", "text", "driving")


def _rows(stdout: str) -> dict[str, dict[str, str]]:
    """application -> source name -> the rest of its line."""
    rows: dict[str, dict[str, str]] = {}
    for line in stdout.splitlines():
        if not line.startswith(" "):
            app = line.split()[0]
            rows[app] = {}
        else:
            name, _, rest = line.strip().partition(" ")
            rows[app][name] = rest.strip()
    return rows


def test_lists_the_sources_of_every_application_with_how_to_install_them(tmp_path):
    nowhere = str(tmp_path / "nowhere")
    env = {"E2E_DATA": nowhere, "E2E_FASHION_MNIST": nowhere, "E2E_QUEEN": nowhere,
           "E2E_DRASCULA": nowhere, "E2E_WARZONE": nowhere, "E2E_SWORD": nowhere,
           "E2E_APT_LISTS": nowhere, "E2E_LOCALE": nowhere, "E2E_ASTERISK_SOUNDS": nowhere}
    rows = _rows(run_cli("data", "list", cwd=tmp_path, env=env).stdout)
    assert list(rows) == list(APPS)
    for app, names in {"vision": ["fashion-mnist", "mnist", "digits", "PATH"],
                       "speech": ["synth", "flite", "piper", "asterisk", "queen", "warzone",
                                  "drascula", "PATH"],
                       "text": ["bible-en-es", "debian-descriptions", "messages-en-es", "PATH"],
                       "driving": ["CarRacing", "runs/driving-data", "PATH"]}.items():
        assert set(names) <= set(rows[app]), (app, rows[app])
    # Nothing is where the overrides point: each line names the command its reader would.
    from e2e.data import amazon_queen, asterisk, bible, drascula, gettext_catalogs, warzone
    from e2e.data.sources import IMAGE_SOURCES

    missing = {("vision", "fashion-mnist"): IMAGE_SOURCES["fashion-mnist"].install,
               ("vision", "mnist"): IMAGE_SOURCES["mnist"].install,
               ("speech", "asterisk"): asterisk.INSTALL,
               ("speech", "queen"): amazon_queen.INSTALL,
               ("speech", "drascula"): drascula.INSTALL,
               ("speech", "warzone"): warzone.INSTALL,
               ("text", "bible-en-es"): bible.INSTALL,
               ("text", "messages-en-es"): gettext_catalogs.INSTALL,
               ("driving", "runs/driving-data"): "e2e data driving --out runs/driving-data"}
    for (app, name), install in missing.items():
        assert f"missing; install: {install}" in rows[app][name], rows[app][name]
    assert "missing; install: sudo apt-get -o Acquire::Languages=en update" in \
        rows["text"]["debian-descriptions"]


def test_an_installed_source_says_where(tmp_path):
    episodes = tmp_path / "runs" / "driving-data"
    episodes.mkdir(parents=True)
    (episodes / "episode-000000.npz").write_bytes(b"")
    rows = _rows(run_cli("data", "list", cwd=tmp_path).stdout)
    assert rows["driving"]["runs/driving-data"].endswith(
        "installed at runs/driving-data (1 episode)")


def test_data_list_answers_without_loading_torch():
    code = ("import contextlib, io, e2e.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert e2e.cli.main(['data', 'list']) == 0")
    loaded = heavy_imports(code)
    assert loaded == [], f"e2e data list imports {loaded}"


def test_copied_install_commands_match_their_applications():
    # e2e.data may not import the application packages, so the catalog holds copies.
    from e2e.tasks import default_config
    from e2e.tasks.driving import sim
    from e2e.tasks.speech import synth

    assert catalog.SYNTH_INSTALL == synth.INSTALL
    assert catalog.SIM_INSTALL == sim.INSTALL
    assert catalog.DRIVING_DATA == default_config("driving").data.source
