"""The README stays a README, its links lead somewhere, and docs/onnx-contract.md agrees with s2s/onnx_contract.py.

Hosts in other languages are written from the contract page, so a name that
exists in the module but not on the page (or the other way round) is a host
bug waiting to happen.
"""

import re
from pathlib import Path

from s2s import onnx_contract

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_PAGE = ROOT / "docs" / "onnx-contract.md"
README_MAX_LINES = 200


def backticked(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


def contract_constants() -> dict[str, str]:
    return {name: value for name, value in vars(onnx_contract).items() if name.isupper() and isinstance(value, str)}


def test_the_readme_is_at_most_200_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_every_relative_link_in_the_readme_and_docs_leads_to_a_file():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken


def test_the_contract_page_names_every_file_tensor_and_metadata_key_of_the_module():
    page = backticked(CONTRACT_PAGE.read_text(encoding="utf-8"))
    constants = contract_constants()
    files = {value for name, value in constants.items() if name.endswith("_FILE")}
    metadata_keys = {value for name, value in constants.items() if name.startswith("META_")}
    tensors = {
        onnx_contract.SOURCE_IDS, onnx_contract.PREVIOUS_TOKEN, onnx_contract.PROBABILITIES, onnx_contract.NEXT_TOKEN,
        onnx_contract.ATTENTION, onnx_contract.MAX_OUTPUT_LENGTH, onnx_contract.TOKEN_IDS, *onnx_contract.MEMORY_NAMES,
        *onnx_contract.state_names(1), *onnx_contract.next_state_names(1),
    }
    assert len(files) >= 8 and len(metadata_keys) >= 19  # the module's names were found at all
    assert files - page == set()
    assert metadata_keys - page == set()
    assert tensors - page == set()


def test_the_contract_page_names_no_file_or_metadata_key_the_module_lacks():
    text = CONTRACT_PAGE.read_text(encoding="utf-8")
    constants = set(contract_constants().values())
    files_on_page = {word for word in backticked(text) if re.fullmatch(r"[a-z0-9_]+\.onnx", word)}
    keys_on_page = set(re.findall(r"`(s2s\.[a-z0-9_]+)", text))
    assert files_on_page - constants == set()
    assert keys_on_page - constants == set()


def test_the_contract_page_states_the_module_format_version():
    text = CONTRACT_PAGE.read_text(encoding="utf-8")
    assert f'`{onnx_contract.META_FORMAT} = "{onnx_contract.FORMAT_VERSION}"`' in text
    assert f"Format version {onnx_contract.FORMAT_VERSION}" in text
