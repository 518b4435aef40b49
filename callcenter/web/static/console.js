// 坐席台: WebSocket screen-pops, agent state, ticket / paging / call-back buttons,
// supervisor wall. No framework; every text goes through textContent.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page || "";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  async function postJSON(url, data) {
    const resp = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json"},
      body: JSON.stringify(data),
    });
    let payload = null;
    try { payload = await resp.json(); } catch (e) { payload = null; }
    if (!resp.ok) {
      const msg = (payload && payload.message) || ("请求失败 HTTP " + resp.status);
      throw new Error(msg.split(" / ")[0]);
    }
    return payload;
  }

  function fmtSeconds(s) {
    s = Math.max(0, Math.round(s || 0));
    const m = Math.floor(s / 60);
    return m ? `${m}分${s % 60}秒` : `${s}秒`;
  }

  // 分:秒, as the wall and the call log write durations (75.4 → "1:15").
  function mmss(s) {
    s = Math.max(0, Math.round(Number(s) || 0));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  const ROLE = {owner: "业主", tenant: "租户", family: "家属"};
  // The server sends ``outcome_label`` and ``at_local`` (the site's time zone); these
  // are only for a pop built by an older server.
  const OUTCOME = {answered: "已接听", abandoned: "来电放弃", voicemail: "留言", emergency: "紧急呼叫",
    ivr_only: "语音自助", missed: "未接", ended: "未接听", transferred: "已转接"};

  // ------------------------------------------------------------------ WebSocket

  let ws = null;
  let backoff = 500;
  const wsStatus = document.getElementById("ws-status");

  function setWsStatus(online) {
    if (!wsStatus) return;
    wsStatus.textContent = online ? "已连接" : "未连接，正在重连…";
    wsStatus.className = "ws-status " + (online ? "online" : "offline");
    body.dataset.ws = online ? "online" : "offline";
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}/ws/agent`);
    ws.onopen = () => { backoff = 500; setWsStatus(true); };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "pop") renderPop(msg.call, msg.pop);
      else if (msg.type === "status" || msg.type === "hello") renderStatus(msg.status);
      else if (msg.type === "wall") renderWall(msg.wall);
      else if (msg.type === "callbacks") window.dispatchEvent(new CustomEvent("callbacks-changed"));
    };
    ws.onclose = (ev) => {
      setWsStatus(false);
      if (ev.code === 4401) {
        // The session is over (signed out elsewhere, expired, account disabled).
        if (wsStatus) wsStatus.textContent = "登录已失效，请重新登录";
        location.href = "/login?next=" + encodeURIComponent(location.pathname);
        return;
      }
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }

  // ------------------------------------------------------------------ agent state

  const STATE_LABEL = {not_ready: "未就绪", ready: "就绪", paused: "小休", wrap_up: "话后处理", offline: "离线"};

  function renderStatus(st) {
    const node = document.getElementById("agent-state");
    if (!node || !st) return;
    node.dataset.state = st.state;
    node.className = "state state-" + st.state;
    node.textContent = (STATE_LABEL[st.state] || st.state) + (st.state === "paused" && st.reason ? `（${st.reason}）` : "");
  }

  const statusForm = document.getElementById("status-form");
  if (statusForm) {
    statusForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const state = ev.submitter ? ev.submitter.value : "ready";
      const reason = statusForm.querySelector('select[name="reason"]').value;
      try {
        const st = await postJSON("/api/console/status", {state, reason});
        renderStatus(st);
      } catch (e) { alert("切换状态失败：" + e.message); }
    });
  }

  // ------------------------------------------------------------------ pop cards

  const calls = document.getElementById("calls");

  function renderPop(call, pop) {
    if (!calls) return;
    const noCalls = document.getElementById("no-calls");
    if (noCalls) noCalls.hidden = true;
    let card = calls.querySelector(`[data-call-id="${CSS.escape(call.call_id)}"]`);
    const fresh = !card;
    const keepForms = card ? card.querySelector(".forms") : null;
    const keepNotice = card ? card.querySelector(".notice") : null;
    const next = buildCard(call, pop);
    // An update of the call (answered, a new open repair...) keeps what the agent
    // was typing and the last message shown.
    if (keepForms && keepForms.childElementCount) next.querySelector(".forms").replaceWith(keepForms);
    if (keepNotice && !keepNotice.hidden) next.querySelector(".notice").replaceWith(keepNotice);
    if (fresh) calls.prepend(next); else card.replaceWith(next);
  }

  function buildCard(call, pop) {
    const caller = pop.caller || {};
    const community = pop.community ? pop.community.name : "";
    const stateText = call.state === "answered" && !call.answered_by_me && call.answered_by
      ? `已由 ${call.answered_by} 接听` : call.state_label;
    const card = el("article", {class: `card state-${call.state} ${pop.known ? "known" : "unknown"}`,
      dataset: {callId: call.call_id, state: call.state}});
    card.append(el("header", {class: "card-head"},
      el("h3", {class: "caller-name", text: pop.title}),
      el("span", {class: "caller-number", text: caller.display || "未显示号码"}),
      el("span", {class: "call-state", text: stateText}),
      el("span", {class: "muted", text: [community && `来自 ${community}`, call.queue && `队列 ${call.queue}`,
        `等待 ${fmtSeconds(call.wait_s)}`].filter(Boolean).join(" · ")}),
    ));
    if (pop.ivr_path && pop.ivr_path.length) {
      card.append(el("p", {class: "ivr"}, el("span", {class: "label", text: "语音导航："}), pop.ivr_path.join(" › ")));
    }
    if (pop.tags && pop.tags.length) {
      card.append(el("p", {class: "tags"}, pop.tags.map((t) => el("span", {class: "tag", text: t}))));
    }
    if (pop.known) {
      const rows = pop.rooms.map((r) => el("tr", {dataset: {roomId: r.room_id}},
        el("td", {class: "room-label", text: r.label}),
        el("td", {class: r.in_arrears ? "arrears" : "", text: `${r.arrears} 元`}),
        el("td", {}, r.open_tickets.length
          ? r.open_tickets.map((t) => el("div", {class: "ticket", text: `${t.title}（${t.state_label}）`}))
          : el("span", {class: "muted", text: "无"})),
      ));
      card.append(el("table", {class: "rooms"},
        el("thead", {}, el("tr", {}, el("th", {text: "房号"}), el("th", {text: "欠费"}), el("th", {text: "未完成报修"}))),
        el("tbody", {}, rows)));
      if (pop.other_open_tickets && pop.other_open_tickets.length) {
        // The caller's repairs not about one of these rooms (no room, or a room they left).
        card.append(el("div", {class: "other-tickets"}, el("span", {class: "label", text: "其他未完成报修："}),
          pop.other_open_tickets.map((t) => el("div", {class: "ticket",
            text: `${t.reference ? t.reference + " " : ""}${t.title}（${t.state_label}）`}))));
      }
      const people = pop.people.concat(pop.household.map((p) => Object.assign({household: true}, p)));
      card.append(el("ul", {class: "people"}, people.map((p) => el("li", {dataset: {personId: p.person_id}},
        el("strong", {text: p.name}), ` ${ROLE[p.role] || p.role}`, p.household ? "（同户）" : "",
        p.phones.length ? ` · ${p.phones.join("、")}` : "",
        p.rooms && p.rooms.length ? el("span", {class: "person-rooms muted", text:
          " · " + p.rooms.map((r) => `${shortLabel(pop, r.label)}（${ROLE[r.role] || r.role}）`).join("、")}) : ""))));
    } else if (pop.degraded) {
      card.append(el("p", {class: "degraded-note", text: "业主资料暂时无法读取，正在重试；号码和语音导航路径如上。"}));
    } else {
      card.append(el("p", {class: "unknown-note", text: "目录中没有这个号码。"}));
    }
    if (pop.recent_calls && pop.recent_calls.length) {
      card.append(el("details", {class: "recent"}, el("summary", {text: `最近 ${pop.recent_calls.length} 次来电`}),
        el("ul", {}, pop.recent_calls.map((c) => el("li", {text:
          `${c.at_local || ""} ${c.outcome_label || OUTCOME[c.outcome] || "其他"}${c.agent ? " · " + c.agent : ""}`})))));
    }
    const actions = el("div", {class: "actions"});
    actions.append(el("button", {type: "button", class: "primary", text: "创建报修单",
      onclick: () => showTicketForm(card, call, pop)}));
    actions.append(el("button", {type: "button", class: "danger", text: "呼叫值班工程师",
      onclick: () => showPageForm(card, call, pop)}));
    if (caller.callable) {
      actions.append(el("button", {type: "button", text: "回拨", onclick: () => callBack(card, call)}));
    }
    if (!pop.known && !pop.degraded && caller.callable) {
      actions.append(el("button", {type: "button", text: "登记来电人", onclick: () => showUnknownForm(card, call)}));
    }
    if (!call.live) {
      actions.append(el("button", {type: "button", class: "link", text: "关闭", onclick: () => card.remove()}));
    }
    card.append(actions, el("div", {class: "forms"}), el("p", {class: "notice", hidden: true}));
    return card;
  }

  function current(card) {
    // The card on the page now: a pop update may have replaced the one a button was on.
    const id = card.dataset.callId;
    return (calls && id && calls.querySelector(`[data-call-id="${CSS.escape(id)}"]`)) || card;
  }

  function notice(card, text, isError) {
    const n = current(card).querySelector(".notice");
    n.hidden = false;
    n.className = "notice" + (isError ? " error" : "");
    n.textContent = text;
  }

  // A room label without the community's name when the call came in on that community.
  function shortLabel(pop, label) {
    const name = pop.community ? pop.community.name : "";
    return name && label.startsWith(name) && label.length > name.length ? label.slice(name.length) : label;
  }

  // Which room and which person a ticket or a page is about. The room the IVR settled
  // on comes first, else the caller's first room; the person is the caller linked to
  // that room. With several rooms or people the agent picks.
  function defaultRoom(pop) {
    const rooms = pop.rooms || [];
    return rooms.find((r) => r.room_id === pop.ivr_room_id) || rooms[0] || null;
  }

  function personFor(pop, room) {
    const people = pop.people || [];
    if (!room) return people[0] || null;
    return people.find((p) => (p.rooms || []).some((r) => r.room_id === room.room_id)) || people[0] || null;
  }

  function subjectPicker(pop, onChange) {
    const rooms = pop.rooms || [];
    const people = pop.people || [];
    const chosen = {room: defaultRoom(pop), person: null};
    chosen.person = personFor(pop, chosen.room);
    const wrap = el("div", {class: "subject"});
    let roomSel = null;
    let personSel = null;
    if (rooms.length > 1) {
      roomSel = el("select", {name: "room_id", "aria-label": "房号"},
        rooms.map((r) => el("option", {value: String(r.room_id), text: r.label})),
        el("option", {value: "", text: "不指定房号"}));
      roomSel.value = chosen.room ? String(chosen.room.room_id) : "";
      wrap.append(el("label", {}, "房号 ", roomSel));
    } else if (rooms.length === 1) {
      wrap.append(el("p", {class: "muted", text: `房号：${rooms[0].label}`}));
    }
    if (people.length > 1) {
      personSel = el("select", {name: "person_id", "aria-label": "来电人"},
        people.map((p) => el("option", {value: String(p.person_id), text: p.name})));
      personSel.value = chosen.person ? String(chosen.person.person_id) : "";
      wrap.append(el("label", {}, "来电人 ", personSel));
    }
    if (roomSel) roomSel.addEventListener("change", () => {
      chosen.room = rooms.find((r) => String(r.room_id) === roomSel.value) || null;
      const linked = chosen.person && chosen.room && (chosen.person.rooms || []).some((r) => r.room_id === chosen.room.room_id);
      if (chosen.room && !linked) {
        chosen.person = personFor(pop, chosen.room);
        if (personSel && chosen.person) personSel.value = String(chosen.person.person_id);
      }
      onChange(chosen);
    });
    if (personSel) personSel.addEventListener("change", () => {
      chosen.person = people.find((p) => String(p.person_id) === personSel.value) || null;
      const own = chosen.person ? (chosen.person.rooms || []) : [];
      if (own.length && !(chosen.room && own.some((r) => r.room_id === chosen.room.room_id))) {
        chosen.room = rooms.find((r) => r.room_id === own[0].room_id) || chosen.room;
        if (roomSel && chosen.room) roomSel.value = String(chosen.room.room_id);
      }
      onChange(chosen);
    });
    return {node: wrap, chosen};
  }

  // Prefilled text follows the picked room until the agent edits it.
  function follow(field, make) {
    let last = make();
    field.value = last;
    return () => {
      if (field.value === last) { last = make(); field.value = last; }
    };
  }

  // The caller's number never goes into the text: it travels as the ticket's (or the
  // incident's) caller_number, which every viewer reads as their role allows; a number
  // typed into a text is read by engineers and by later shifts alike.
  function describe(call, pop, room, person) {
    const name = person ? person.name : pop.title;
    const parts = [`来电：${name}`];
    if (room) parts.push(`房号：${room.label}`);
    if (pop.ivr_path && pop.ivr_path.length) parts.push(`语音导航：${pop.ivr_path.join(" › ")}`);
    return parts.join("\n");
  }

  // IVR wording → ticket category (a guess the agent can change).
  const CATEGORY_HINTS = [["电梯", "elevator"], ["燃气", "gas"], ["煤气", "gas"], ["火", "fire"],
    ["水", "plumbing"], ["漏", "plumbing"], ["电", "electrical"], ["门", "door_access"],
    ["噪", "noise"], ["停车", "parking"], ["车位", "parking"], ["费", "fees"], ["缴", "fees"],
    ["投诉", "complaint"], ["卫生", "sanitation"], ["垃圾", "sanitation"], ["保安", "security"]];

  function guessCategory(pop) {
    const text = (pop.ivr_path || []).join(" ");
    for (const [word, key] of CATEGORY_HINTS) if (text.includes(word)) return key;
    return "other";
  }

  function categorySelect(pop) {
    const select = el("select", {name: "category", required: true});
    const tpl = document.getElementById("ticket-categories");
    if (tpl) select.append(tpl.content.cloneNode(true));
    select.value = guessCategory(pop);
    if (!select.value) select.value = "other";
    return select;
  }

  function callerFields(pop, person) {
    const caller = pop.caller || {};
    return {
      caller_number: caller.masked ? "" : (caller.display || ""),
      caller_name: person ? person.name : "",
      person_id: person ? person.person_id : null,
      community: pop.community ? pop.community.code : null,
    };
  }

  function showTicketForm(card, call, pop) {
    const forms = card.querySelector(".forms");
    forms.replaceChildren();
    const roomLabels = new Set((pop.rooms || []).map((r) => r.label));
    const steps = (pop.ivr_path || []).filter((p) => !roomLabels.has(p));
    const lastIvr = steps.length ? steps[steps.length - 1] : "";
    const summary = el("input", {name: "summary", required: true, maxlength: 200});
    const description = el("textarea", {name: "description", rows: 3});
    const picker = subjectPicker(pop, () => { followSummary(); followDescription(); });
    const chosen = picker.chosen;
    const followSummary = follow(summary, () => `${lastIvr || "报修"}${chosen.room ? "（" + shortLabel(pop, chosen.room.label) + "）" : ""}`);
    const followDescription = follow(description, () => describe(call, pop, chosen.room, chosen.person));
    const form = el("form", {class: "stack ticket-form"},
      picker.node,
      el("label", {}, "类别 ", categorySelect(pop)),
      el("label", {}, "摘要 ", summary),
      el("label", {}, "描述 ", description),
      el("label", {}, "优先级 ", el("select", {name: "priority"},
        el("option", {value: "normal", text: "普通"}), el("option", {value: "emergency", text: "紧急"}))),
      el("button", {type: "submit", class: "primary", text: "提交报修单"}));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const room = chosen.room;
      try {
        const t = await postJSON(body.dataset.ticketsApi, Object.assign(callerFields(pop, chosen.person), {
          source: "phone", category: f.get("category"), summary: f.get("summary"),
          description: f.get("description"), priority: f.get("priority"),
          room_id: room ? room.room_id : null,
        }));
        forms.replaceChildren();
        const ref = t && (t.number || t.reference || t.id);
        notice(card, `报修单已创建${ref ? "：" + ref : ""}`);
        if (t && t.id) {
          const n = current(card).querySelector(".notice");
          n.append(" ", el("a", {href: `${body.dataset.ticketsPage}/${t.id}`, text: "查看"}));
        }
      } catch (e) { notice(card, "创建报修单失败：" + e.message, true); }
    });
    forms.append(form);
    summary.focus();
  }

  function showPageForm(card, call, pop) {
    const forms = card.querySelector(".forms");
    forms.replaceChildren();
    const text = el("textarea", {name: "summary", rows: 3});
    const picker = subjectPicker(pop, () => followText());
    const chosen = picker.chosen;
    const followText = follow(text, () => describe(call, pop, chosen.room, chosen.person));
    const form = el("form", {class: "stack page-form"},
      picker.node,
      el("label", {}, "类别 ", categorySelect(pop)),
      el("label", {}, "说明 ", text),
      el("button", {type: "submit", class: "danger", text: "立即呼叫值班工程师"}));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const room = chosen.room;
      const fields = callerFields(pop, chosen.person);
      try {
        const inc = await postJSON(body.dataset.incidentsApi, {
          source: "agent", category: f.get("category"), summary: f.get("summary"),
          community: fields.community, caller_number: fields.caller_number, call_id: call.call_id,
          building: room ? room.building : null, unit: room ? room.unit : null,
          room: room ? room.room : null,
        });
        forms.replaceChildren();
        notice(card, `已呼叫值班工程师${inc && inc.incident_id ? "（事件 " + inc.incident_id + "）" : ""}`);
      } catch (e) { notice(card, "呼叫值班工程师失败：" + e.message, true); }
    });
    forms.append(form);
  }

  function showUnknownForm(card, call) {
    const forms = card.querySelector(".forms");
    forms.replaceChildren();
    const form = el("form", {class: "stack unknown-form"},
      el("label", {}, "姓名 ", el("input", {name: "name", required: true})),
      el("label", {}, "房号 ", el("input", {name: "room", placeholder: "3-1-1201（可不填）"})),
      el("label", {}, "身份 ", el("select", {name: "role"},
        el("option", {value: "owner", text: "业主"}), el("option", {value: "tenant", text: "租户"}),
        el("option", {value: "family", text: "家属"}))),
      el("label", {}, "备注 ", el("input", {name: "note"})),
      el("button", {type: "submit", class: "primary", text: "保存"}));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      try {
        await postJSON("/api/console/unknown-caller", {call_id: call.call_id, name: f.get("name"),
          room: f.get("room"), role: f.get("role"), note: f.get("note")});
        forms.replaceChildren();
        notice(card, "已登记");
      } catch (e) { notice(card, "登记失败：" + e.message, true); }
    });
    forms.append(form);
  }

  async function callBack(card, call) {
    try {
      const r = await postJSON("/api/console/call", {call_id: call.call_id});
      notice(card, r.message);
    } catch (e) { notice(card, "回拨失败：" + e.message, true); }
  }

  // click-to-call buttons in search results
  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest(".call-btn");
    if (!btn) return;
    const out = document.getElementById("call-result");
    try {
      const r = await postJSON("/api/console/call", {person_id: Number(btn.dataset.personId), phone: Number(btn.dataset.phone)});
      if (out) { out.hidden = false; out.className = "notice"; out.textContent = r.message; }
    } catch (e) {
      if (out) { out.hidden = false; out.className = "notice error"; out.textContent = "呼叫失败：" + e.message; }
    }
  });

  // ------------------------------------------------------------------ supervisor wall

  function fillRows(id, rows) {
    const tbody = document.getElementById(id);
    if (tbody) tbody.replaceChildren(...rows);
  }

  // Waiting and talking times keep counting between updates from the server.
  let wallAt = 0;
  setInterval(() => {
    if (page !== "supervisor" || !wallAt) return;
    const extra = (Date.now() - wallAt) / 1000;
    for (const td of document.querySelectorAll("td[data-base]")) {
      td.textContent = mmss(Number(td.dataset.base) + extra);
    }
  }, 1000);

  function renderWall(wall) {
    if (page !== "supervisor" || !wall) return;
    wallAt = Date.now();
    for (const [k, v] of Object.entries(wall.today || {})) {
      const n = document.querySelector(`#today [data-k="${k}"]`);
      if (n) n.textContent = n.dataset.format === "mmss" ? mmss(v) : v;
    }
    fillRows("wall-waiting", wall.waiting.map((c) => el("tr", {},
      el("td", {text: c.title}), el("td", {text: c.caller}), el("td", {text: c.queue || ""}),
      el("td", {text: c.state_label}), el("td", {text: mmss(c.wait_s), dataset: {base: c.wait_s}}))));
    fillRows("wall-talking", wall.talking.map((c) => el("tr", {},
      el("td", {text: c.agent}), el("td", {text: c.title}), el("td", {text: c.caller}),
      el("td", {text: mmss(c.talk_s), dataset: {base: c.talk_s}}))));
    fillRows("wall-agents", wall.agents.map((a) => el("tr", {},
      el("td", {text: a.name}), el("td", {text: a.extension || ""}),
      el("td", {}, el("span", {class: "state state-" + a.state,
        text: (STATE_LABEL[a.state] || a.state) + (a.state === "paused" && a.reason ? `（${a.reason}）` : "") + (a.on_call ? " · 通话中" : "")})),
      el("td", {text: mmss(a.since_s), dataset: {base: a.since_s}}))));
  }

  if (page === "agent" || page === "supervisor") connect();
})();
