"""The alerts file: a good one is read whole; every problem in a bad one is reported with its file and
line, as `activity-feed alerts check` and `serve` print them."""

from __future__ import annotations

from pathlib import Path

import pytest

from activity_feed.alerts import AlertRulesError, Kind, load_rules

GOOD = """
# Two webhooks, four rules.
[[webhooks]]
name = "ops"
url = "https://hooks.example.com/T000/B000"

[[webhooks]]
name = "pager"
url = "http://127.0.0.1:9/alert"
timeout = "2s"

[[rules]]
name = "search keeps failing"
kind = "consecutive_failures"
tool = "search_properties"
count = 3
webhooks = ["ops"]

[[rules]]
name = "errors"
kind = "error_rate"
window = "5m"
threshold = 0.2
min_calls = 10
webhooks = ["ops", "pager"]

[[rules]]
name = "slow"
kind = "p95"
window = 90
max_ms = 800

[[rules]]
name = "stuck"
kind = "stuck_pending"
older_than = "60s"
webhooks = ["pager"]
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    with pytest.raises(AlertRulesError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(f"the alerts file {path} has")
    return [problem.removeprefix(f"{path}:") for problem in caught.value.problems]


def test_a_good_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(GOOD)
    config = load_rules(path)
    assert config.summary() == "4 rules, 2 webhooks"
    assert [(w.name, w.timeout) for w in config.webhooks] == [("ops", 5.0), ("pager", 2.0)]
    streak, rate, slow, stuck = config.rules
    assert (streak.kind, streak.tool, streak.count, streak.webhooks) == (
        Kind.CONSECUTIVE_FAILURES,
        "search_properties",
        3,
        ("ops",),
    )
    assert (rate.kind, rate.tool, rate.window, rate.threshold, rate.min_calls) == (
        Kind.ERROR_RATE,
        None,
        300,
        0.2,
        10,
    )
    assert (slow.window, slow.max_ms, slow.min_calls, slow.webhooks) == (90, 800, 10, ())
    assert (stuck.older_than, stuck.webhooks) == (60, ("pager",))


def test_every_problem_is_named_with_its_line(tmp_path: Path) -> None:
    text = """[[webhooks]]
name = "ops"
url = "https://hooks.example.com/x"

[[webhooks]]
name = "ops"
url = "https://hooks.example.com/y"

[[webhooks]]
name = "ftp"
url = "ftp://example.com/x"

[[rules]]
name = "search keeps failing"
kind = "consecutive_failures"
count = "3"
webhooks = ["ops", "pager"]

[[rules]]
name = "search keeps failing"
kind = "consecutive_failures"
count = 2

[[rules]]
name = "typo"
kind = "error_rat"

[[rules]]
name = "slow"
kind = "p95"
window = "5x"
count = 2
colour = "red"

[[rules]]
kind = "stuck_pending"

[[rules]]
name = "rate"
kind = "error_rate"
window = "1m"
threshold = 1.5
min_calls = true
"""
    assert problems(tmp_path, text) == [
        "5: webhook 'ops' is defined twice (first at line 1)",
        "11: webhook 'ftp': url must be http:// or https://, not 'ftp://…'",
        "16: rule 'search keeps failing': count must be a whole number, not the string '3'",
        "17: rule 'search keeps failing': unknown webhook 'pager' (defined: 'ftp', 'ops')",
        "19: rule 'search keeps failing' is defined twice (first at line 13)",
        "26: rule 'typo': unknown kind 'error_rat' (use one of error_rate, p95, consecutive_failures, "
        "stuck_pending)",
        "28: rule 'slow': kind p95 needs max_ms (missing)",
        "31: rule 'slow': window: not a duration: '5x' (use a number with s, m, h or d, such as 30d or 10m)",
        "32: rule 'slow': count does not apply to kind p95 (it takes window, max_ms, min_calls)",
        "33: rule 'slow': unknown field 'colour' (known: name, kind, tool, webhooks, window, threshold, "
        "max_ms, count, older_than, min_calls)",
        "35: rule #5: name is missing",
        "35: rule #5: kind stuck_pending needs older_than (missing)",
        "42: rule 'rate': threshold must be at least 0 and less than 1, not 1.5 (a fraction of the calls, "
        "0.05 for 5%: the rule fires when more than it fail)",
        "43: rule 'rate': min_calls must be a whole number, not a boolean",
    ]


def test_a_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    assert problems(tmp_path, '[[rules]]\nname = "x"\nkind = \n') == ["3: not valid TOML: Invalid value"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[rules]]\nname = "a"\nkind = "p95"\nwindow = "1m"\nmax_ms = 0\n',
            "5: rule 'a': max_ms must be more than 0",
        ),
        ('rules = "none"\n', "1: rules must be tables: write [[rules]]"),
        ("[alerting]\nx = 1\n", "1: unknown section 'alerting' (use [[webhooks]] and [[rules]])"),
        (
            '[[rules]]\nname = ""\nkind = "consecutive_failures"\ncount = 1\n',
            "2: rule #1: name must not be empty",
        ),
        (
            # The rate must be more than the threshold: at 1 the rule could never fire.
            '[[rules]]\nname = "a"\nkind = "error_rate"\nwindow = "1m"\nthreshold = 1\n',
            "5: rule 'a': threshold must be at least 0 and less than 1, not 1 (a fraction of the calls, "
            "0.05 for 5%: the rule fires when more than it fail)",
        ),
        (
            '[[rules]]\nname = "a"\nkind = "stuck_pending"\nolder_than = "0s"\n',
            "4: rule 'a': older_than must be more than 0 and at most 7d",
        ),
        (
            '[[rules]]\nname = """multi\nline"""\nkind = "consecutive_failures"\ncount = 0\n',
            "5: rule 'multi\\nline': count must be from 1 to 1000000, not 0",
        ),
    ],
)
def test_single_problems(tmp_path: Path, text: str, expected: str) -> None:
    [problem] = problems(tmp_path, text)
    assert problem.startswith(expected), problem


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(AlertRulesError, match="cannot read the file: No such file or directory"):
        load_rules(path)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://u:p@127.0.0.1:99999/hook", "url must have a port from 1 to 65535"),
        ("http://u:p@127.0.0.1:http/hook", "url must have a port from 1 to 65535"),
        ("http://u:p@[zz]/hook", "url must name a host after 'http://'"),
    ],
)
def test_a_webhook_url_that_cannot_be_split_is_a_problem_of_its_line(
    tmp_path: Path, url: str, expected: str
) -> None:
    [problem] = problems(tmp_path, f'[[webhooks]]\nname = "ops"\nurl = "{url}"\n')
    assert problem.startswith(f"3: webhook 'ops': {expected}"), problem


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("htps://user:secretpw@host/hook", "url must be http:// or https://, not 'htps://…'"),
        ("user:secretpw@host/hook", "url must start with http:// or https://"),
        ("https:///T000/B000/secretpath", "url must name a host after 'https://'"),
    ],
)
def test_a_bad_webhook_url_is_not_echoed(tmp_path: Path, url: str, expected: str) -> None:
    # Its credentials, or a Slack-style secret path, would end up in logs and CI output.
    [problem] = problems(tmp_path, f'[[webhooks]]\nname = "ops"\nurl = "{url}"\n')
    assert problem == f"3: webhook 'ops': {expected}"


def test_a_rule_naming_a_webhook_with_a_problem_is_not_told_it_is_unknown(tmp_path: Path) -> None:
    text = """[[webhooks]]
name = "ops"
url = "ftp://example.com/x"

[[webhooks]]
name = "pager"

[[rules]]
name = "streak"
kind = "consecutive_failures"
count = 3
webhooks = ["ops", "pager", "mail"]
"""
    assert problems(tmp_path, text) == [
        "3: webhook 'ops': url must be http:// or https://, not 'ftp://…'",
        "5: webhook 'pager': url is missing",
        "12: rule 'streak': unknown webhook 'mail' (defined: 'ops', 'pager')",
    ]
