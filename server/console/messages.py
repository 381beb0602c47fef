"""Chinese messages for the refusals the domain functions raise (their messages are English,
for developers and the API)."""

from __future__ import annotations

from server.errors import APIError, Forbidden, NotFound, RateLimited, ValidationFailed

NOT_FOUND = "记录不存在，或不在您的管辖范围内。"
FORBIDDEN = "您的角色无权执行此操作。"

_WORKFLOW = {
    "illegal_transition": "当前状态下不能执行此操作。",
    "role_not_allowed": "您的角色不能在当前状态下执行此操作。",
    "missing_param": "请填写必填项。",
    "invalid_param": "填写的内容无效。",
    "return_not_earlier": "只能退回到更早的环节。",
    "no_due_date": "案件没有受理日期或办结期限，无法计算延期。",
    "extension_not_allowed": "此类案件不允许延期。",
    "extension_already_used": "本案已延期过一次，不能再次延期。",
    "extension_already_pending": "已有待审批的延期申请。",
    "extension_too_long": "延期天数超过规定上限。",
    "not_pending_extension": "没有待审批的延期申请。",
    "unknown_action": "未知的操作。",
    "unknown_status": "案件状态无法识别。",
    "unknown_rule": "案件类别没有对应的期限规则。",
}
_DETAILS = {
    "comment": "退回时必须填写退回意见。",
    "reason": "必须填写理由。",
    "decision": "审核结论无效。",
    "field": "该字段没有待解决的冲突。",
}
_CODES = {
    "weak_password": "密码至少需要 8 个字符。",
    "username_taken": "用户名已被占用。",
    "unit_level_mismatch": "该角色不能归属于所选单位的层级。",
    "grids_not_allowed": "只有网格员可以分配网格。",
    "invalid_grid": "所选网格不属于该用户的单位。",
}


def chinese(error: APIError) -> str:
    """The message a console user sees for ``error``."""
    if isinstance(error, NotFound):
        return NOT_FOUND
    if isinstance(error, Forbidden):
        return FORBIDDEN
    if isinstance(error, RateLimited):
        return "操作过于频繁，请稍后再试。"
    if error.code.startswith("workflow."):
        text = _WORKFLOW.get(error.code.removeprefix("workflow."), "操作被拒绝。")
        return f"操作被拒绝：{text}（{error.message}）"
    if error.code in _CODES:
        return _CODES[error.code]
    if isinstance(error, ValidationFailed):
        for key, text in _DETAILS.items():
            if key in error.details and len(error.details) == 1:
                return text
        if error.details:
            fields = "；".join(
                f"{k}：{', '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in error.details.items()
            )
            return f"填写的内容无效：{fields}"
    return f"操作未完成：{error.message}"


__all__ = ["FORBIDDEN", "NOT_FOUND", "chinese"]
