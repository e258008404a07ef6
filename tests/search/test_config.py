"""search.ini: the shipped files, and every bad value refused with its key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.platform.settings import Settings, SettingsError
from service.search.config import (
    DEFAULT_CONFIG_FILE,
    SearchConfig,
    SearchConfigError,
    load_config,
    parse_config,
)
from service.search.paging import PagingError, parse_page_request
from tests.support import ROOT


def test_the_shipped_config_points_at_the_real_api_with_the_issues_values() -> None:
    config = load_config(None)
    assert DEFAULT_CONFIG_FILE.name == "search.ini"
    assert DEFAULT_CONFIG_FILE.is_file()
    assert config.api_url == "https://api.stackexchange.com"
    assert config.cache_ttl_s == 60
    assert config.refresh_interval_s == 600
    assert config.page_sizes == (25, 50, 100)
    assert config.default_site == "stackoverflow"
    assert config == SearchConfig()


def test_the_offline_config_points_at_the_fake_on_this_machine() -> None:
    config = load_config(ROOT / "examples" / "search-offline.ini")
    assert config.api_url == "http://127.0.0.1:8099"
    assert config.page_sizes == (25, 50, 100)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[api]\nurl = ftp://x", "api.url"),
        ("[api]\ntimeout_s = soon", "api.timeout_s"),
        ("[api]\ntimeout_s = 0", "api.timeout_s"),
        ("[api]\npage_size = 101", "api.page_size"),
        ("[api]\nsort = random", "api.sort"),
        ("[api]\ndefault_site = so/../x", "api.default_site"),
        ("[api]\nmax_backoff_wait_s = -1", "api.max_backoff_wait_s"),
        ("[cache]\nttl_s = 1.5", "cache.ttl_s"),
        ("[cache]\nttl_s = 0", "cache.ttl_s"),
        ("[refresh]\ninterval_s = nan", "refresh.interval_s"),
        ("[refresh]\ninterval_s = 1", "refresh.interval_s"),
        ("[refresh]\nmax_pages_per_query = 0", "refresh.max_pages_per_query"),
        ("[api]\ndefault_site = StackOverflow", "api.default_site"),
        ("[api]\ndefault_site = caf\u00e9", "api.default_site"),
        ("[api]\ndefault_site = .so", "api.default_site"),
        ("[pages]\nnew_queries_per_minute = 0", "pages.new_queries_per_minute"),
        ("[pages]\npage_sizes = 25, many", "pages.page_sizes"),
        ("[pages]\npage_sizes = 25, 25", "pages.page_sizes"),
        ("[pages]\ndefault_page_size = 30", "pages.default_page_size"),
        ("[pages]\nsortable_columns = score, colour", "pages.sortable_columns"),
        ("[pages]\ndefault_sort = title\nsortable_columns = score", "pages.default_sort"),
        ("[pages]\ndefault_order = sideways", "pages.default_order"),
        ("[pages]\nper_page = 10", "pages.per_page"),
        ("[colours]\nx = 1", "[colours]"),
        ("no section header", "search.ini"),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(text: str, named: str) -> None:
    with pytest.raises(SearchConfigError) as refused:
        parse_config(text)
    assert named in str(refused.value)


def test_a_missing_file_is_an_error_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SearchConfigError, match="SEARCH_CONFIG: cannot read"):
        load_config(tmp_path / "none.ini")


def test_settings_read_redis_url_and_search_config() -> None:
    settings = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6390", "SEARCH_CONFIG": "s.ini"})
    assert settings.redis_url == "redis://127.0.0.1:6390"
    assert settings.search_config == Path("s.ini")
    assert Settings.from_env({}).redis_url is None
    with pytest.raises(SettingsError, match="REDIS_URL"):
        Settings.from_env({"REDIS_URL": "http://127.0.0.1:6379"})


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "two"}, "page"),
        ({"page": "99999999999999999999"}, "page"),
        ({"page": "\u00b2"}, "page must be a whole number"),
        ({"page": "\u0663"}, "page must be a whole number"),
        ({"per_page": "\u00b2\u00b2"}, "per_page must be a whole number"),
        ({"per_page": "30"}, "per_page must be one of 25, 50, 100"),
        ({"per_page": ""}, "per_page"),
        ({"sort": "colour"}, "sort must be one of"),
        ({"order": "up"}, "order must be asc or desc"),
    ],
)
def test_bad_page_parameters_are_refused_naming_them(args: dict[str, str], named: str) -> None:
    with pytest.raises(PagingError, match=named):
        parse_page_request(args, SearchConfig())


def test_good_page_parameters_and_the_defaults() -> None:
    wanted = parse_page_request({}, SearchConfig())
    assert (wanted.page, wanted.per_page, wanted.sort, wanted.order) == (1, 25, "score", "desc")
    wanted = parse_page_request(
        {"page": "3", "per_page": "50", "sort": "title", "order": "asc"}, SearchConfig()
    )
    assert (wanted.offset, wanted.results_needed, wanted.api_pages_needed(100)) == (100, 150, 2)


@pytest.mark.integration
async def test_an_invalid_config_makes_the_pages_a_503_naming_the_key(tmp_path: Path) -> None:
    from tests.support.search_fixtures import search_app, serving

    ini = tmp_path / "bad.ini"
    ini.write_text("[cache]\nttl_s = forever\n", encoding="utf-8")
    async with serving(search_app(None, ini)) as client:
        response = await client.get("/search")
        index = await client.get("/")
    assert response.status_code == 503
    assert "cache.ttl_s" in response.text
    assert index.status_code == 200  # the rest of the service runs
