"""The dispute case panel: status, deadline light, steps timeline, and forms for the legal
next actions only (the server still refuses an illegal move)."""

from __future__ import annotations

from datetime import date
from typing import Any

from server.cases import case_state
from server.codes import CodeBook
from server.console.forms import FormError, integer, text
from server.console.labels import iso_local
from server.console.present import case_summary
from sync import RecordState
from sync.workflow import MAIN_PATH, CaseAction, allowed_actions

# Inputs of each action's form: (param, label, kind, required). kind: text | textarea |
# number | select:<code table> | select:return_targets.
ACTION_FORMS: dict[str, list[tuple[str, str, str, bool]]] = {
    "accept": [("opinion", "受理意见", "textarea", False)],
    "reject": [("reason", "不予受理理由", "textarea", True)],
    "assign": [
        ("responsible_unit", "责任单位", "text", True),
        ("responsible_person", "责任人", "text", True),
        ("opinion", "交办意见", "textarea", False),
    ],
    "start": [("opinion", "意见", "textarea", False)],
    "resolve": [
        ("mediation_outcome", "调解结果", "select:mediation_outcomes", True),
        ("opinion", "化解情况", "textarea", False),
    ],
    "follow_up": [("note", "回访情况", "textarea", True)],
    "close": [("opinion", "归档意见", "textarea", False)],
    "return": [
        ("target_status", "退回到", "select:return_targets", True),
        ("reason", "退回理由", "textarea", True),
    ],
    "escalate": [("reason", "上报理由", "textarea", True)],
    "request_extension": [
        ("days", "延期天数", "number", True),
        ("reason", "延期理由", "textarea", True),
    ],
    "approve_extension": [("opinion", "审批意见", "textarea", False)],
    "refuse_extension": [("reason", "不同意理由", "textarea", True)],
    "supervise": [
        ("level", "督办级别", "select:supervision_levels", True),
        ("note", "督办意见", "textarea", True),
    ],
}
# Who acts next when the signed-in user has nothing to do.
WAITING_FOR = {
    "assigned": "等待网格员在移动端开始办理。",
    "in_progress": "等待网格员在移动端登记化解结果。",
    "resolved": "等待网格员在移动端登记回访情况。",
    "escalated": "已上报街道，等待街道受理。",
    "closed": "案件已归档，办理结束。",
    "rejected": "案件不予受理，办理结束。",
}
PRIMARY = {"accept", "assign", "close"}


def _options(book: CodeBook, kind: str, status: str) -> list[tuple[str, str]]:
    table = kind.removeprefix("select:")
    if table == "return_targets":
        earlier = MAIN_PATH[: MAIN_PATH.index(status)] if status in MAIN_PATH else ()
        return [(s.value, book.label("dispute_statuses", s.value)) for s in earlier]
    return [(e["code"], e["label"]) for e in book.tables.get(table, [])]


def panel(book: CodeBook, state: RecordState, role: str, today: date) -> dict[str, Any]:
    values = state.values()
    case = case_state(values, book)
    info = case_summary(values, book, today)
    forms = []
    for action in allowed_actions(case, role):
        inputs = [
            {
                "name": n,
                "label": label,
                "kind": kind,
                "required": req,
                "options": _options(book, kind, info["status"])
                if kind.startswith("select:")
                else [],
            }
            for n, label, kind, req in ACTION_FORMS[action.value]
        ]
        forms.append(
            {
                "action": action.value,
                "label": book.label("step_actions", action.value),
                "inputs": inputs,
                "primary": action.value in PRIMARY,
            }
        )
    steps = [
        {
            **s,
            "action_label": book.label("step_actions", s.get("action")),
            "to_label": book.label("dispute_statuses", s.get("to")),
            "when": iso_local(s.get("at")) or s.get("on") or "",
        }
        for s in state.items("steps")
    ]
    path = [
        {
            "status": s.value,
            "label": book.label("dispute_statuses", s.value),
            "done": info["status"] in MAIN_PATH
            and MAIN_PATH.index(s) <= MAIN_PATH.index(info["status"]),
            "current": s.value == info["status"],
        }
        for s in MAIN_PATH
    ]
    rule = book.rules.rule_for(book.rule_code_for_category(values.get("category")))
    return {
        **info,
        "forms": forms,
        "steps": steps,
        "path": path,
        "rule": rule.name_zh,
        "handle_days": rule.handle_days,
        "waiting": WAITING_FOR.get(info["status"], ""),
        "responsible": values.get("responsible_person") or "",
        "unit": values.get("responsible_unit") or "",
        "supervision": book.label("supervision_levels", values.get("supervision"))
        if values.get("supervision")
        else "",
        "extension_pending": values.get("extension_pending"),
    }


def params_from_form(action: str) -> tuple[dict[str, Any], str | None]:
    """The action's params and opinion as typed in its form."""
    try:
        CaseAction(action)
    except ValueError:
        raise FormError("未知的操作。") from None
    params: dict[str, Any] = {}
    for name, label, kind, _required in ACTION_FORMS[action]:
        if kind == "number":
            params[name] = integer(name, label=label)
        else:
            value = text(name, label=label)
            if value:
                params[name] = value
    opinion = params.pop("opinion", None)
    return params, opinion


__all__ = ["ACTION_FORMS", "panel", "params_from_form"]
