"""English and Simplified Chinese (issue "For the relays' own users"): the catalogue is complete
(every check's title and proves, every message of the code), the language is chosen by
``--lang``, ``CONFORMANCE_LANG`` or the locale, and results.json stays the same in both."""

from __future__ import annotations

import gettext
import importlib.util
import io
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from conformance import i18n
from conformance.checks.registry import all_checks
from conformance.config import load_providers
from conformance.i18n import CHECK_CONTEXT, LanguageError, resolve_lang
from tests.conftest import RunOutput, run_cli, write_providers
from tests.test_report_cli import shared_runs

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "conformance" / "locale" / "zh_CN" / "LC_MESSAGES" / "conformance.po"
CJK = re.compile("[\u4e00-\u9fff]")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("i18n_script", ROOT / "scripts" / "i18n.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("i18n_script", module)
    spec.loader.exec_module(module)
    return module


def untranslated_checks(catalogue: gettext.NullTranslations) -> list[str]:
    """``id: title``/``id: proves`` of every registered check whose Chinese is missing: not in
    the catalogue (gettext gives the English back) or not Chinese."""
    missing = []
    for check in all_checks():
        context = CHECK_CONTEXT.format(id=check.id)
        for field, english in (("title", check.title), ("proves", check.proves)):
            chinese = catalogue.pgettext(context, english)
            if chinese == english or not CJK.search(chinese):
                missing.append(f"{check.id}: {field}")
    return missing


def test_every_check_has_a_chinese_title_and_proves() -> None:
    assert untranslated_checks(i18n.translations("zh-CN")) == []
    assert len(all_checks()) > 100


def test_a_missing_check_translation_is_caught() -> None:
    """The test above fails on a missing entry: the catalogue without one check's proves."""
    with PO.open("rb") as handle:
        catalog = read_po(handle, locale="zh_CN", domain="conformance")
    victim = all_checks()[7]
    catalog.delete(victim.proves, context=CHECK_CONTEXT.format(id=victim.id))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    assert untranslated_checks(gettext.GNUTranslations(buffer)) == [f"{victim.id}: proves"]


def test_every_message_of_the_code_is_translated() -> None:
    """Every msgid extracted from the sources, templates and registry has a zh-CN msgstr (not
    fuzzy, not empty), and the shipped .mo is the compiled .po."""
    assert _script().problems("zh_CN") == []


def test_an_untranslated_message_is_caught(tmp_path: Path) -> None:
    script = _script()
    text = PO.read_text(encoding="utf-8")
    blanked = text.replace('msgstr "文件不存在"', 'msgstr ""', 1)
    assert blanked != text
    po = tmp_path / "conformance.po"
    po.write_text(blanked, encoding="utf-8")
    (tmp_path / "conformance.mo").write_bytes((PO.with_suffix(".mo")).read_bytes())
    found = script.problems("zh_CN", path=po)
    assert "zh_CN: untranslated 'file not found'" in found
    assert any("is not the compiled .po" in line for line in found)


@pytest.mark.parametrize(("cli", "env", "expected"), [
    ("zh-CN", {}, "zh-CN"),
    ("zh_CN", {"CONFORMANCE_LANG": "en"}, "zh-CN"),
    ("en", {"LANG": "zh_CN.UTF-8"}, "en"),
    (None, {"CONFORMANCE_LANG": "zh-CN", "LANG": "en_US.UTF-8"}, "zh-CN"),
    (None, {"CONFORMANCE_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
    (None, {"LANG": "zh_CN.UTF-8"}, "zh-CN"),
    (None, {"LANG": "zh_TW.UTF-8"}, "zh-CN"),
    (None, {"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
    (None, {"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "C"}, "zh-CN"),
    (None, {"LANG": "fr_FR.UTF-8"}, "en"),
    (None, {}, "en"),
])
def test_language_resolution(cli: str | None, env: dict[str, str], expected: str) -> None:
    assert resolve_lang(cli, env) == expected


def test_an_unknown_language_is_one_line() -> None:
    with pytest.raises(LanguageError, match=r"^--lang fr: unknown language \(choose en or "
                       r"zh-CN\)$"):
        resolve_lang("fr", {})
    with pytest.raises(LanguageError, match=r"^CONFORMANCE_LANG=xx: unknown language"):
        resolve_lang(None, {"CONFORMANCE_LANG": "xx"})


def test_stored_one_liners_render_in_either_language() -> None:
    stored = i18n.SET_VARIABLES.format(variables="APIYI_API_KEY")
    rejected = i18n.KEY_REJECTED.format(origin="the key in MY_KEY",
                                        why="HTTP 401: 无效的令牌 (invalid_api_key)")
    with i18n.using("zh-CN"):
        assert i18n.localize(stored) == "请设置 APIYI_API_KEY"
        assert i18n.localize(rejected) == ("MY_KEY 中的密钥被拒绝:HTTP 401: 无效的令牌 "
                                           "(invalid_api_key);请更换密钥(用这个密钥,该服务商的"
                                           "任何检查项都无法得出结论)")
        quoted = "stop='7' ignored: the answer still contains '7'"
        assert i18n.localize(quoted) == quoted  # a verdict quoting the provider stays
    assert i18n.localize(stored) == stored
    assert i18n.active() == "en"


def test_jinja_templates_get_the_catalogue() -> None:
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment(autoescape=True)
    i18n.install_jinja(env, "zh-CN")
    template = env.from_string('{{ _("not run") }} · {% trans %}family{% endtrans %}')
    assert template.render() == "未运行 · 类别"
    i18n.install_jinja(env, "en")
    assert template.render() == "not run · family"


@pytest.mark.parametrize("how", [["--lang", "zh-CN"], "CONFORMANCE_LANG", "LANG"])
def test_checks_lists_the_catalogue_in_chinese(tmp_path: Path, how: object) -> None:
    args, env = ["checks"], {}
    if isinstance(how, list):
        args += how
    elif how == "CONFORMANCE_LANG":
        env = {"CONFORMANCE_LANG": "zh-CN"}
    else:
        env = {"CONFORMANCE_LANG": "", "LANG": "zh_CN.UTF-8"}
    proc = run_cli(args, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(all_checks())
    assert lines[0].split()[0] == "models.list"  # ids stay
    assert all(CJK.search(line) for line in lines), [x for x in lines if not CJK.search(x)]
    english = run_cli(["checks"], cwd=tmp_path)
    assert not CJK.search(english.stdout.replace("API易", ""))


def test_markdown_catalogue_in_chinese(tmp_path: Path) -> None:
    proc = run_cli(["checks", "--markdown", "--lang", "zh-CN"], cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("| 检查项 | 类别 | 严重程度 | 验证内容 |\n|---|---|---|---|\n")
    assert "| `auth.wrong_key` | auth | security | 格式正确但错误的 Bearer 令牌" in proc.stdout


def test_a_bad_lang_is_one_line_exit_2(tmp_path: Path) -> None:
    for args, env in ((["checks", "--lang", "klingon"], {}),
                      (["report", "nowhere"], {"CONFORMANCE_LANG": "xx"})):
        proc = run_cli(args, cwd=tmp_path, env=env)
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "unknown language" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_errors_and_config_problems_in_chinese(tmp_path: Path) -> None:
    proc = run_cli(["run", "--lang", "zh-CN", "--providers", "missing.yaml"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "conformance: missing.yaml: 文件不存在\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  - name: a\n    base_url: http://127.0.0.1:9/v1\n"
                   "    model: m\n    modle: x\n", encoding="utf-8")
    proc = run_cli(["run", "--providers", str(bad)], cwd=tmp_path,
                   env={"CONFORMANCE_LANG": "zh-CN"})
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"conformance: {bad}:5: providers[0].modle: 未知的键;"
                                  "是不是想写 'model'?"), proc.stderr


def test_init_in_chinese_writes_the_same_providers(tmp_path: Path) -> None:
    proc = run_cli(["init", "--lang", "zh-CN", "zh.yaml"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("已写入 zh.yaml")
    assert run_cli(["init", "en.yaml"], cwd=tmp_path).returncode == 0
    chinese = (tmp_path / "zh.yaml").read_text(encoding="utf-8")
    english = (tmp_path / "en.yaml").read_text(encoding="utf-8")
    # The same providers and settings; only the comments are translated.
    assert yaml.safe_load(chinese) == yaml.safe_load(english)
    comments = [line for line in chinese.splitlines() if line.lstrip().startswith("#")]
    assert sum(bool(CJK.search(line)) for line in comments) > len(comments) * 0.7
    for words in ("中转站", "HTTPS_PROXY", "无可用渠道", "APIYI_API_KEY", "deepseek-chat",
                  "gpt-4.1", "不支持"):
        assert words in chinese, words
    config = load_providers(tmp_path / "zh.yaml", {"APIYI_API_KEY": "sk-test"})
    assert "apiyi" in config.names() and "reference" in config.names()
    assert config.get("apiyi").model == "gpt-4o-mini"
    assert config.get("lalc").skip_reason == "set LALC_API_KEY"


def test_a_run_in_chinese_and_its_report_in_either_language(tmp_path: Path) -> None:
    """``run --lang zh-CN`` prints the summary in Chinese; ``report --lang`` re-renders the same
    run in either language; results.json is the same bytes whatever the language."""
    providers = write_providers(tmp_path / "providers.yaml", [
        {"name": "ref", "builtin": "reference"},
        {"name": "broken", "builtin": "reference", "faults": ["ignore_stop"]},
        {"name": "relay", "base_url": "https://relay.example/v1",
         "api_key": "${I18N_UNSET_KEY}", "model": "m"}])
    out = tmp_path / "run"
    proc = run_cli(["run", "--lang", "zh-CN", "--providers", str(providers), "--report-dir",
                    str(out), "-k", "chat.basic or stop.string", "-p", "no:cacheprovider"],
                   cwd=tmp_path, env={"I18N_UNSET_KEY": ""})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    for words in ("兼容性矩阵", "得分", "✓ 通过", "✗ 失败", "relay:已跳过(请设置 I18N_UNSET_KEY)",
                  "报告:"):
        assert words in proc.stdout, words
    results = (out / "results.json").read_bytes()
    data = json.loads(results)
    for words in ("兼容", "请设置", "失败", "通过"):  # language-neutral: ids, English source text
        assert words not in results.decode("utf-8"), words
    assert {p["name"]: p.get("skipped") for p in data["providers"]}["relay"] == \
        "set I18N_UNSET_KEY"
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## 兼容性矩阵 — 运行 `")
    assert "### 不符合项(1)" in summary and "| `stop.string` | broken | ✗ 失败 |" in summary
    assert '<html lang="zh-CN">' in (out / "matrix.html").read_text(encoding="utf-8")

    english = run_cli(["report", "--lang", "en", str(out)], cwd=tmp_path)
    assert english.returncode == 0, english.stderr
    assert "conformance matrix" in english.stdout and "skipped (set I18N_UNSET_KEY)" in \
        english.stdout
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## Conformance matrix — run `") and not CJK.search(summary)
    page = (out / "matrix.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in page and not CJK.search(page)
    assert (out / "results.json").read_bytes() == results

    chinese = run_cli(["report", str(out)], cwd=tmp_path,
                      env={"CONFORMANCE_LANG": "", "LANG": "zh_CN.UTF-8"})
    assert chinese.returncode == 0, chinese.stderr
    assert "兼容性矩阵" in chinese.stdout and "已写入" in chinese.stdout
    assert "**总体兼容性:" in (out / "summary.md").read_text(encoding="utf-8")
    page = (out / "matrix.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page and "OpenAI 兼容性矩阵" in page
    assert (out / "results.json").read_bytes() == results


def test_the_catalogues_ship_in_the_package() -> None:
    """hatch puts the package directory's files in the wheel, except those git ignores: the
    compiled catalogue and the translated starter file must not be ignored."""
    import subprocess

    shipped = [PO.with_suffix(".mo"), PO.parent.parent / "providers.yaml"]
    for path in shipped:
        assert path.is_file(), path
    proc = subprocess.run(["git", "check-ignore", *map(str, shipped)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if proc.returncode == 128:
        pytest.skip(f"not a git checkout: {proc.stderr.strip()}")
    assert proc.stdout == "", f"ignored by git, so left out of the wheel: {proc.stdout}"


SECTION = re.compile(r"^<!-- section: ([a-z0-9-]+) -->$")


def readme_sections(path: Path) -> list[str]:
    """The section ids of a README, in order; every heading (outside code blocks) must be
    announced by the ``<!-- section: id -->`` line just above it."""
    ids: list[str] = []
    previous = ""
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("#"):
            match = SECTION.match(previous)
            assert match, f"{path.name}:{number}: heading without <!-- section: id -->: {line}"
            ids.append(match.group(1))
        previous = line
    return ids


def test_the_chinese_readme_has_every_section_of_the_readme() -> None:
    english = readme_sections(ROOT / "README.md")
    chinese = readme_sections(ROOT / "README.zh-CN.md")
    assert len(english) == len(set(english)) > 15
    missing = [s for s in english if s not in chinese]
    assert not missing, f"README.zh-CN.md lacks the sections {missing} of README.md"
    assert chinese == english, "README.zh-CN.md has its sections in another order or extra ones"


def test_a_missing_chinese_section_is_caught(tmp_path: Path) -> None:
    text = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    start = text.index("<!-- section: allure -->")
    cut = tmp_path / "README.zh-CN.md"
    cut.write_text(text[:start] + text[text.index("<!-- section: nightly-ci -->"):],
                   encoding="utf-8")
    assert "allure" not in readme_sections(cut)
    heading_only = tmp_path / "bare.md"
    heading_only.write_text("# title\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="heading without"):
        readme_sections(heading_only)


def test_the_readmes_link_each_other_and_the_chinese_table_is_current(tmp_path: Path) -> None:
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    chinese = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "[简体中文](README.zh-CN.md)" in english.split("\n## ", 1)[0]
    assert "[English](README.md)" in chinese.split("\n## ", 1)[0]
    proc = run_cli(["checks", "--markdown", "--lang", "zh-CN"], cwd=tmp_path)
    block = chinese.split("<!-- checks:start -->\n", 1)[1].split("<!-- checks:end -->", 1)[0]
    assert block == proc.stdout, ("regenerate README.zh-CN.md's table with `conformance checks "
                                  "--markdown --lang zh-CN`")


def test_help_texts_in_chinese(tmp_path: Path) -> None:
    proc = run_cli(["run", "--help", "--lang", "zh-CN"], cwd=tmp_path)
    assert proc.returncode == 0
    assert "通过 pytest 运行本套件" in proc.stdout and "输出语言:en 或 zh-CN" in proc.stdout
    # argparse's own words too: the usage line, the headings, -h
    assert proc.stdout.startswith("用法:conformance run") and "显示此帮助信息并退出" in proc.stdout
    assert "usage:" not in proc.stdout and "show this help" not in proc.stdout
    missing = run_cli(["report", "--lang", "zh-CN"], cwd=tmp_path)
    assert missing.returncode == 2 and "conformance report:错误:缺少以下参数:DIR" in missing.stderr
    english = run_cli(["report", "--help"], cwd=tmp_path)
    assert english.stdout.startswith("usage: conformance report") and "options:" in english.stdout
    proc = run_cli(["init", "--help"], cwd=tmp_path, env={"CONFORMANCE_LANG": "zh-CN"})
    assert "写出带注释的 providers.yaml 起步文件" not in proc.stdout  # that is `conformance -h`
    assert "写到哪里" in proc.stdout


def test_plain_pytest_takes_the_language_from_the_ini(tmp_path: Path) -> None:
    from tests.conftest import run_pytest

    write_providers(tmp_path / "providers.yaml", [
        {"name": "ref", "builtin": "reference"},
        {"name": "relay", "base_url": "https://relay.example/v1", "api_key": "${I18N_UNSET}",
         "model": "m"}])
    (tmp_path / "pytest.ini").write_text("[pytest]\nconformance_lang = zh-CN\n",
                                         encoding="utf-8")
    proc = run_pytest(["conformance", "--providers", "providers.yaml", "--report-dir", "r",
                       "-k", "stop.string", "-p", "no:cacheprovider", "-rs"], cwd=tmp_path,
                      env={"I18N_UNSET": ""})
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "兼容性矩阵" in proc.stdout and "relay:已跳过(请设置 I18N_UNSET)" in proc.stdout
    assert "stop.py:" in proc.stdout and ": 请设置 I18N_UNSET" in proc.stdout  # the skip line
    proc = run_pytest(["conformance", "--providers", "providers.yaml", "--report-dir", "r2",
                       "-k", "stop.string", "-p", "no:cacheprovider", "--lang", "en"],
                      cwd=tmp_path, env={"I18N_UNSET": ""})
    assert "conformance matrix" in proc.stdout and "兼容性矩阵" not in proc.stdout


#: The demo's providers (providers.yaml): the builtin reference and its labelled broken copy.
DEMO_PROVIDERS = [
    {"name": "reference", "builtin": "reference"},
    {"name": "reference-broken-demo", "builtin": "reference", "faults": ["ignore_stop", "no_done"]},
]
#: What the Chinese demo runs: enough families for every part of the page (streams, stop).
DEMO_FAMILIES = "models or chat or streaming or stop or errors"


def chinese_demo_run(tmp_path_factory: pytest.TempPathFactory) -> RunOutput:
    """``LANG=zh_CN.UTF-8 conformance run`` on the demo's providers, as ``make demo`` runs it
    in a Chinese locale (built once per session, shared with the browser test)."""
    def build(tmp: Path) -> dict[str, RunOutput]:
        providers = write_providers(tmp / "providers.yaml", DEMO_PROVIDERS)
        out = tmp / "report"
        proc = run_cli(["run", "--providers", str(providers), "--report-dir", str(out),
                        "-m", DEMO_FAMILIES, "-n", "2", "-p", "no:cacheprovider"],
                       cwd=tmp, env={"CONFORMANCE_LANG": "", "LANG": "zh_CN.UTF-8"})
        return {"run": RunOutput(proc.returncode, proc.stdout, proc.stderr, out)}

    return shared_runs(tmp_path_factory, "zh-demo", build)["run"]


def test_the_demo_in_a_chinese_locale(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``LANG=zh_CN.UTF-8 make demo``: the summary is printed in Chinese and matrix.html is
    written in Chinese, with the broken variant's failures as red cells."""
    run = chinese_demo_run(tmp_path_factory)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for words in ("兼容性矩阵", "✓ 通过", "✗ 失败", "报告:"):
        assert words in run.stdout, words
    page = (run.report_dir / "matrix.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page
    for words in ("OpenAI 兼容性矩阵", "行为类别 / 检查项", "只看不符合项", "全部展开",
                  "参考服务商,仅供对比", "总体兼容性", "通过率"):
        assert words in page, words
    for english in ("only deviations<", ">expand all<", ">behaviour family / check<",
                    ">reference, for comparison<", ">Speed per provider<"):
        assert english not in page, english
    data = json.loads((run.report_dir / "results.json").read_text(encoding="utf-8"))
    failed = {r["check"] for r in data["results"]
              if r["provider"] == "reference-broken-demo" and r["outcome"] == "fail"}
    assert {"stop.string", "streaming.done_sentinel"} <= failed, failed
    assert not any(r["outcome"] == "fail" for r in data["results"]
                   if r["provider"] == "reference")
    broken = [p["name"] for p in data["providers"]].index("reference-broken-demo")
    assert re.search(rf'<tr class="chk[^"]*" data-check="stop.string">(?:(?!</tr>).)*?'
                     rf'<td class="c o-fail[^"]*" data-col="{broken}"', page, re.DOTALL)
    stored = (run.report_dir / "results.json").read_text(encoding="utf-8")
    for words in ("兼容", "通过", "失败", "参考服务商"):  # results.json stays language-neutral
        assert words not in stored, words


def test_the_matrix_follows_the_language_active_when_it_is_rendered() -> None:
    """matrix.py's Jinja2 environment is built once, at import: its words must still follow the
    language active at each render (both orders, in one process), ids and data unchanged."""
    from conformance.report.matrix import render_matrix
    from tests.test_report import synthetic_run

    data = synthetic_run(2, 12)
    with i18n.using("zh-CN"):
        chinese = render_matrix(data)
    english = render_matrix(data)
    with i18n.using("zh-CN"):
        again = render_matrix(data)
    assert chinese == again
    assert '<html lang="zh-CN">' in chinese and '<html lang="en">' in english
    for words in ("OpenAI 兼容性矩阵", "只看不符合项", "全部展开", "复制为 curl 命令", "证据",
                  '"fail":"失败"'):
        assert words in chinese, words
        assert words not in english, words
    for words in ("OpenAI-compatibility matrix", "only deviations", "expand all", "copy as curl",
                  '"fail":"fail"'):
        assert words in english, words
    assert not CJK.search(english)
    for check in data.checks:  # ids stay; the catalogue's titles are translated
        assert f'data-check="{check["id"]}"' in chinese
