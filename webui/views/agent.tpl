% rebase('layout', title='Agent panel')
<link rel="stylesheet" href="/static/agent.css">
<script src="/static/agent.js" defer></script>
<h1>Agent panel</h1>
% if ext:
<div hx-ext="sse" sse-connect="/events/agent?call={{call_id}}" class="agent-live">
<div class="agent-side">
<form method="post" action="/agent/desk" class="desk" novalidate>
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="extension">I am at extension
<select id="extension" name="extension"{{!' aria-invalid="true" aria-describedby="extension-error"' if errors.get('extension') else ''}}>
% if not ext:
<option value="">— pick your extension —</option>
% end
% for e in extensions:
<option value="{{e.number}}"{{!' selected' if e.number == ext else ''}}>{{e.number}}{{' – ' + e.name if e.name else ''}}</option>
% end
</select>
</label>
<button type="submit" class="secondary">{{'Change' if ext else 'This is me'}}</button>
% if errors.get('extension'):
<small id="extension-error" class="field-error">{{errors['extension']}}</small>
% end
</form>
<section id="agent-state" sse-swap="agent_state" aria-live="polite">
{{!state_html}}
</section>
<section class="agent-actions" aria-label="your queues">
<div class="agent-buttons">
<form method="post" action="/agent/login" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="agent-login">Log in</button></form>
<form method="post" action="/agent/logout" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="agent-logout" class="secondary">Log out</button></form>
<form method="post" action="/agent/unpause" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="agent-unpause" class="secondary">Unpause</button></form>
</div>
% if errors.get('action'):
<p id="action-error" class="form-error" role="alert">{{errors['action']}}</p>
% end
<form method="post" action="/agent/pause" class="agent-pause" novalidate>
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="reason">Pause reason
<input id="reason" name="reason" list="reasons" value="{{form.get('reason', '')}}" autocomplete="off" placeholder="break"{{!' aria-invalid="true" aria-describedby="reason-error"' if errors.get('reason') else ''}}>
</label>
<datalist id="reasons">
% for r in reasons:
<option value="{{r}}">
% end
</datalist>
<button type="submit" id="agent-pause">Pause</button>
% if errors.get('reason'):
<small id="reason-error" class="field-error">{{errors['reason']}}</small>
% end
</form>
</section>
</div>
<section id="agent-pop" sse-swap="agent_pop">
{{!pop_html}}
</section>
</div>
% else:
<form method="post" action="/agent/desk" class="desk" novalidate>
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="extension">I am at extension
<select id="extension" name="extension"{{!' aria-invalid="true" aria-describedby="extension-error"' if errors.get('extension') else ''}}>
% if not ext:
<option value="">— pick your extension —</option>
% end
% for e in extensions:
<option value="{{e.number}}"{{!' selected' if e.number == ext else ''}}>{{e.number}}{{' – ' + e.name if e.name else ''}}</option>
% end
</select>
</label>
<button type="submit" class="secondary">{{'Change' if ext else 'This is me'}}</button>
% if errors.get('extension'):
<small id="extension-error" class="field-error">{{errors['extension']}}</small>
% end
</form>
<p class="muted">Pick the extension of the desk phone you take calls on: the panel then logs it in and out of its queues, and shows the caller's record when a queue call rings it.</p>
% end
