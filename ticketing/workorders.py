"""Work orders: a person's actions on a ticket, checked against ``ticketing.workflow``.

``WorkOrders.act`` locks the ticket, works out how the actor relates to it
(its assignee, the head of its department), asks the table whether the action
may start from the ticket's state (409) and whether this actor may do it (403),
checks the action's own input (400 naming the field), then writes the change
and one ``TicketEvent`` per step, with who (user, role), when, and the
particulars in ``data``, in the same transaction. After the commit each step is
published as ``ticket.changed`` (with ``action``): what the SLA clock and the
KPI will read.

回访: a score of ``LOW_SCORE`` or less, with the problem resolved, opens a
mandatory callback task for a supervisor, and the ticket cannot be 归档 until a
supervisor marks it done; "not resolved" reopens the ticket at once (a second
step, ``reopen``, in the log), back to 派单.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import Clock
from callcenter.directory.models import StaffUser
from callcenter.errors import Conflict, InvalidInput, NotFound
from ticketing.categories import COMPLAINT, COMPLAINT_GRADES, DEFAULT_GRADE
from ticketing.departments import find_department
from ticketing.models import (
    CallbackTask,
    Department,
    DepartmentMember,
    Ticket,
    TicketEvent,
    TicketPhoto,
)
from ticketing.photos import MAX_PHOTOS_PER_TICKET, PhotoStore
from ticketing.services import TicketService, TicketView
from ticketing.sla_timers import Move, SlaClock
from ticketing.workflow import ACTIONS, ASSIGNEE, DEPARTMENT_HEAD, Actor, check

LOW_SCORE = 3
"""A 回访 score at or below this (out of 5) is poor: a supervisor must call back.
The manuals count 4–5 as praise; 3 is "acceptable", not praise."""
MAX_NOTE = 1000
MAX_COST = Decimal("10000000")


OnCallLookup = Callable[[AsyncSession, int, str, datetime], Awaitable[list[int] | None]]
"""``(session, community_id, schedule role, now)`` → the staff user ids on call now,
in chain order; None when the community has no schedule for that role. The
composition root builds it from ``callcenter.oncall``."""


class CallbackPending(Conflict):
    error_id = "callback_pending"


@dataclass(frozen=True, slots=True)
class ActionInput:
    """What an action may carry; each action reads its own fields."""

    note: str = ""
    reason: str = ""
    department: str | None = None
    assignee_id: int | None = None
    on_call: bool = False
    appointment_at: datetime | None = None
    score: int | None = None
    resolved: bool | None = None
    comment: str = ""
    materials: str = ""
    cost: str | None = None
    photos: Sequence[bytes] = field(default_factory=tuple)
    complaint_grade: str | None = None


@dataclass(slots=True)
class _Step:
    action: str
    from_state: str
    to_state: str
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class WorkOrders:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], bus: EventBus,
                 clock: Clock, tickets: TicketService, photos: PhotoStore | None = None,
                 on_call: OnCallLookup | None = None, sla: SlaClock | None = None) -> None:
        self._sm = sessionmaker
        self._sla = sla
        self._on_call = on_call
        self._bus = bus
        self._clock = clock
        self._tickets = tickets
        self._photos = photos

    async def relations(self, session: AsyncSession, ticket: Ticket, actor: Actor
                        ) -> frozenset[str]:
        """How ``actor`` relates to ``ticket``: its assignee, its department's head."""
        if actor.user_id is None:
            return frozenset()
        out = set()
        if ticket.assignee_id == actor.user_id:
            out.add(ASSIGNEE)
        if ticket.community_id is not None:
            head = (await session.scalars(
                select(DepartmentMember.id).join(Department).where(
                    Department.community_id == ticket.community_id,
                    Department.code == ticket.department,
                    DepartmentMember.user_id == actor.user_id,
                    DepartmentMember.head.is_(True)))).first()
            if head is not None:
                out.add(DEPARTMENT_HEAD)
        return frozenset(out)

    async def may_do(self, ticket_id: int, actor: Actor) -> list[str]:
        """The actions ``actor`` may take on the ticket now (for the page's buttons)."""
        from ticketing.workflow import allowed_actions, may

        async with self._sm() as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                return []
            rel = await self.relations(session, ticket, actor)
            return [a.key for a in allowed_actions(ticket.state) if may(a, actor.role, rel)
                    and (a.key != "grade" or ticket.category == COMPLAINT)]

    async def act(self, ticket_id: int, action: str, actor: Actor,
                  params: ActionInput | None = None) -> TicketView:
        if action not in ACTIONS:
            raise InvalidInput("操作无效 / action: one of " + ", ".join(ACTIONS), field="action")
        params = params or ActionInput()
        for name in ("note", "comment"):
            if len(getattr(params, name)) > MAX_NOTE:
                raise InvalidInput(f"内容过长 / {name}: at most {MAX_NOTE} characters", field=name)
        async with self._sm() as session:
            ticket = (await session.scalars(
                select(Ticket).where(Ticket.id == ticket_id).with_for_update())).first()
            if ticket is None:
                raise NotFound("工单不存在 / no such ticket", details={"ticket_id": ticket_id})
            rel = await self.relations(session, ticket, actor)
            check(action, ticket.state, actor.role, rel, ticket_id=ticket_id)
            now = self._clock.now()
            steps = await getattr(self, f"_{action}")(session, ticket, actor, params, now)
            for step in steps:
                session.add(TicketEvent(
                    ticket_id=ticket.id, from_state=step.from_state, to_state=step.to_state,
                    actor=actor.username[:100], at=now, note=step.note[:MAX_NOTE],
                    action=step.action, actor_id=actor.user_id, actor_role=actor.role[:16],
                    data=step.data or None))
            ticket.state = steps[-1].to_state
            ticket.updated_at = now
            if self._sla is not None:  # the SLA clock moves in the same transaction
                await self._sla.ticket_moved(
                    session, ticket, [Move(s.action, s.from_state, s.to_state) for s in steps],
                    now)
            await session.commit()
            view = await self._tickets.view_in(session, ticket_id)
        for step in steps:
            self._bus.publish(DomainEvent("ticket.changed", {
                "ticket_id": view.id, "number": view.number, "action": step.action,
                "from": step.from_state, "to": step.to_state, "state": view.state,
                "actor": actor.username, "actor_id": actor.user_id, "actor_role": actor.role,
                "note": step.note, "data": step.data, "category": view.category,
                "priority": view.priority, "community_id": view.community_id,
                "department": view.department, "assignee_id": view.assignee_id,
            }, at=now))
        return view

    # -- assignment -------------------------------------------------------------

    async def _pick(self, session: AsyncSession, ticket: Ticket, params: ActionInput,
                    now: datetime) -> tuple[Department, StaffUser]:
        if ticket.community_id is None:
            raise Conflict("工单没有所属小区，不能按部门派单；请先补充位置",
                           details={"field": "community"})
        code = (params.department or ticket.department or "").strip()
        dept = await find_department(session, ticket.community_id, code) if code else None
        if dept is None or not dept.active:
            raise InvalidInput("部门不存在 / no such department", field="department")
        members = {m.user_id: m for m in dept.members}
        if params.on_call:
            if dept.oncall_role is None or self._on_call is None:
                raise InvalidInput(f"{dept.name}没有值班安排，请指定处理人", field="on_call")
            on_call = await self._on_call(session, ticket.community_id, dept.oncall_role, now)
            if on_call is None:
                raise Conflict(f"{dept.name}没有值班表，请指定处理人",
                               details={"field": "on_call"})
            people = [uid for uid in on_call if not members or uid in members]
            if not people:
                raise Conflict(f"{dept.name}现在没有值班人员，请指定处理人",
                               details={"field": "on_call"})
            user_id = people[0]
        elif params.assignee_id is not None:
            user_id = params.assignee_id
            if user_id not in members:
                raise InvalidInput(f"处理人不是{dept.name}的人员", field="assignee_id")
        else:
            raise InvalidInput("请选择处理人，或派给部门值班人员", field="assignee_id")
        user = await session.get(StaffUser, user_id)
        if user is None or not user.active:
            raise InvalidInput("处理人不存在或已停用", field="assignee_id")
        return dept, user

    async def _assign(self, session: AsyncSession, ticket: Ticket, params: ActionInput,
                      now: datetime, action: str) -> list[_Step]:
        dept, user = await self._pick(session, ticket, params, now)
        if action == "reassign" and user.id == ticket.assignee_id and dept.code == ticket.department:
            raise InvalidInput("改派须换一位处理人", field="assignee_id")
        data: dict[str, Any] = {"department": dept.code, "department_name": dept.name,
                                "assignee_id": user.id,
                                "assignee": user.display_name or user.username,
                                "on_call": params.on_call}
        if action == "reassign":
            data["previous_assignee_id"] = ticket.assignee_id
        if action == "dispatch":
            ticket.appointment_at = None  # a new 派单 (after 退单 or 重开) agrees its own
        if params.appointment_at is not None:
            if params.appointment_at.tzinfo is None:
                raise InvalidInput("预约时间须带时区", field="appointment_at")
            ticket.appointment_at = params.appointment_at
            data["appointment_at"] = params.appointment_at.isoformat()
        ticket.department = dept.code
        ticket.assignee_id = user.id
        return [_Step(action, ticket.state, "dispatched", params.note, data)]

    async def _dispatch(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                        params: ActionInput, now: datetime) -> list[_Step]:
        return await self._assign(session, ticket, params, now, "dispatch")

    async def _reassign(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                        params: ActionInput, now: datetime) -> list[_Step]:
        return await self._assign(session, ticket, params, now, "reassign")

    async def _return(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                      params: ActionInput, now: datetime) -> list[_Step]:
        reason = params.reason.strip()
        if not reason:
            raise InvalidInput("请填写退单原因", field="reason")
        if len(reason) > MAX_NOTE:
            raise InvalidInput("退单原因过长", field="reason")
        previous = ticket.assignee_id
        ticket.assignee_id = None
        return [_Step("return", ticket.state, "returned", reason,
                      {"previous_assignee_id": previous, "reason": reason})]

    # -- the assignee's side ----------------------------------------------------

    async def _accept(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                      params: ActionInput, now: datetime) -> list[_Step]:
        return [_Step("accept", ticket.state, "accepted", params.note)]

    async def _arrive(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                      params: ActionInput, now: datetime) -> list[_Step]:
        return [_Step("arrive", ticket.state, "in_progress", params.note)]

    async def _save_photos(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                           photos: Sequence[bytes], now: datetime) -> list[int]:
        if not photos:
            return []
        if self._photos is None:
            raise Conflict("未配置照片存储 / no photo store", details={"field": "photo"})
        for i, data in enumerate(photos):
            self._photos.check(data, field=f"photo[{i}]" if len(photos) > 1 else "photo")
        have = len((await session.scalars(select(TicketPhoto.id).where(
            TicketPhoto.ticket_id == ticket.id))).all())
        if have + len(photos) > MAX_PHOTOS_PER_TICKET:
            raise InvalidInput(f"每张工单最多 {MAX_PHOTOS_PER_TICKET} 张照片", field="photo")
        ids = []
        for data in photos:
            stored, ctype, digest, size = await self._photos.save(ticket.id, data, now)
            photo = TicketPhoto(ticket_id=ticket.id, stored_path=stored, content_type=ctype,
                                size_bytes=size, sha256=digest, uploaded_by=actor.username[:100],
                                uploaded_at=now)
            session.add(photo)
            await session.flush()
            ids.append(photo.id)
        return ids

    async def _add_photo(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                         params: ActionInput, now: datetime) -> list[_Step]:
        if not params.photos:
            raise InvalidInput("请选择照片", field="photo")
        ids = await self._save_photos(session, ticket, actor, params.photos, now)
        return [_Step("add_photo", ticket.state, ticket.state, params.note, {"photo_ids": ids})]

    async def _complete(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                        params: ActionInput, now: datetime) -> list[_Step]:
        note = params.note.strip()
        if not note:
            raise InvalidInput("请填写完工说明", field="note")
        if len(params.materials) > 500:
            raise InvalidInput("材料说明过长（500字以内）", field="materials")
        cost: Decimal | None = None
        if params.cost not in (None, ""):
            try:
                cost = Decimal(str(params.cost)).quantize(Decimal("0.01"))
            except (InvalidOperation, ValueError):
                raise InvalidInput("费用须是金额，如 35.50", field="cost") from None
            if not cost.is_finite() or cost < 0 or cost >= MAX_COST:
                raise InvalidInput("费用须是 0 到 9999999.99 之间的金额", field="cost")
        ids = await self._save_photos(session, ticket, actor, params.photos, now)
        ticket.materials = params.materials.strip()
        ticket.cost = cost
        data: dict[str, Any] = {"materials": ticket.materials,
                                "cost": str(cost) if cost is not None else None}
        if ids:
            data["photo_ids"] = ids
        return [_Step("complete", ticket.state, "resolved", note, data)]

    # -- the front desk ---------------------------------------------------------

    async def _follow_up(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                         params: ActionInput, now: datetime) -> list[_Step]:
        score, resolved = params.score, params.resolved
        if score is None or isinstance(score, bool) or not 1 <= score <= 5:
            raise InvalidInput("满意度须是 1 到 5 分", field="score")
        if resolved is None:
            raise InvalidInput("请选择问题是否已解决", field="resolved")
        comment = params.comment.strip()
        ticket.followup_score, ticket.followup_resolved = score, resolved
        ticket.followup_comment = comment
        data: dict[str, Any] = {"score": score, "resolved": resolved, "comment": comment}
        steps = [_Step("follow_up", ticket.state, "followed_up", params.note or comment, data)]
        if not resolved:
            steps.append(_Step("reopen", "followed_up", "reopened", "回访：问题未解决，重新派单",
                               {"auto": True, "score": score}))
        elif score <= LOW_SCORE:
            task = CallbackTask(ticket_id=ticket.id, reason=f"回访满意度 {score} 分（满分 5 分）",
                                created_at=now, created_by=actor.username[:100])
            session.add(task)
            await session.flush()
            data["callback_id"] = task.id
        return steps

    async def _callback_done(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                             params: ActionInput, now: datetime) -> list[_Step]:
        task = (await session.scalars(select(CallbackTask).where(
            CallbackTask.ticket_id == ticket.id, CallbackTask.done_at.is_(None))
            .order_by(CallbackTask.id))).first()
        if task is None:
            raise Conflict("这张工单没有待完成的回访任务", details={"action": "callback_done"})
        note = params.note.strip()
        if not note:
            raise InvalidInput("请填写回访结果", field="note")
        task.done_at, task.done_by, task.note = now, actor.username[:100], note
        return [_Step("callback_done", ticket.state, ticket.state, note,
                      {"callback_id": task.id})]

    async def _archive(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                       params: ActionInput, now: datetime) -> list[_Step]:
        pending = (await session.scalars(select(CallbackTask.id).where(
            CallbackTask.ticket_id == ticket.id, CallbackTask.done_at.is_(None)))).first()
        if pending is not None:
            raise CallbackPending("主管回访任务未完成，不能归档",
                                  details={"action": "archive", "callback_id": pending})
        return [_Step("archive", ticket.state, "closed", params.note)]

    async def _reopen(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                      params: ActionInput, now: datetime) -> list[_Step]:
        note = params.note.strip()
        if not note:
            raise InvalidInput("请填写重开原因", field="note")
        return [_Step("reopen", ticket.state, "reopened", note)]

    async def _cancel(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                      params: ActionInput, now: datetime) -> list[_Step]:
        note = params.note.strip()
        if not note:
            raise InvalidInput("请填写取消原因", field="note")
        return [_Step("cancel", ticket.state, "cancelled", note)]

    async def _grade(self, session: AsyncSession, ticket: Ticket, actor: Actor,
                     params: ActionInput, now: datetime) -> list[_Step]:
        """调整投诉等级: a complaint's grade, with the reason; the SLA clock re-arms its
        running clocks with the new grade's limits (``SlaClock``), and a first 重大
        tells the community's supervisors."""
        if ticket.category != COMPLAINT:
            raise InvalidInput("只有服务投诉可以调整投诉等级 / complaint_grade is for "
                               "category complaint only", field="complaint_grade")
        grade = params.complaint_grade
        if grade is None or grade not in COMPLAINT_GRADES:
            raise InvalidInput("请选择投诉等级（一般、重要、重大） / complaint_grade: one of "
                               + ", ".join(COMPLAINT_GRADES), field="complaint_grade")
        previous = ticket.complaint_grade or DEFAULT_GRADE
        if grade == previous:
            raise InvalidInput(f"工单已是{COMPLAINT_GRADES[grade]}", field="complaint_grade")
        reason = params.reason.strip()
        if not reason:
            raise InvalidInput("请填写调整原因", field="reason")
        if len(reason) > MAX_NOTE:
            raise InvalidInput("调整原因过长", field="reason")
        ticket.complaint_grade = grade
        return [_Step("grade", ticket.state, ticket.state, reason,
                      {"grade": grade, "previous_grade": previous})]

    async def photo(self, ticket_id: int, photo_id: int) -> tuple[bytes, str]:
        """A photo's bytes and content type (NotFound when it is not this ticket's)."""
        async with self._sm() as session:
            row = await session.get(TicketPhoto, photo_id)
        if row is None or row.ticket_id != ticket_id or self._photos is None:
            raise NotFound("照片不存在 / no such photo", details={"field": "photo_id"})
        try:
            return self._photos.read(row.stored_path), row.content_type
        except (OSError, ValueError):
            raise NotFound("照片文件已不在 / photo file missing",
                           details={"field": "photo_id"}) from None
