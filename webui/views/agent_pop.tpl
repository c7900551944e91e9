% if call is None:
<p class="muted pop-idle">When a queue call rings your phone, the caller's record shows here.</p>
% else:
<article class="pop pop-{{call['state'].replace(' ', '')}}" id="pop" data-call="{{call['call']}}">
<header>
%   what = {'ringing': 'Ringing now', 'on call': 'On the call', 'ended': 'Last call'}.get(call['state'], call['state'])
<p class="pop-what">{{what}}{{' · ' + call['queue_name'] if call.get('queue_name') else ''}}{{' · callback' if call.get('callback') else ''}}</p>
<h2 id="pop-number">{{call['caller'] or 'unknown number'}}</h2>
</header>
% if contact:
<div class="pop-contact" id="pop-contact">
<p class="pop-name"><a href="/contacts/{{contact.id}}" id="pop-name">{{contact.name}}</a>{{' · ' if contact.company else ''}}<span id="pop-company">{{contact.company}}</span></p>
% if contact.notes:
<p class="pop-notes" id="pop-notes">{{contact.notes}}</p>
% end
</div>
% elif call['caller']:
<p class="pop-contact muted" id="pop-contact">Not in your contacts. <a href="{{new_contact}}" id="pop-add-contact">Add this number</a></p>
% end
% if crm:
<p><a href="{{crm}}" id="pop-crm" target="_blank" rel="noopener noreferrer">Open in CRM ↗</a></p>
% end
<h3>Calls of this number{{!' <a href="/contacts/%d" class="small-link">all</a>' % contact.id if contact and more else ''}}</h3>
<div class="scroll" id="pop-history">
% include('agent_history', rows=rows, this_call=call['call'])
</div>
<form method="post" action="/agent/calls/{{call['call']}}/note" class="pop-note" novalidate>
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="disposition">Disposition
<select id="disposition" name="disposition"{{!' aria-invalid="true" aria-describedby="disposition-error"' if errors.get('disposition') else ''}}>
%   chosen = form.get('disposition') or (this_note.disposition if this_note else '')
<option value="">— how did the call end? —</option>
% for d in dispositions:
<option value="{{d}}"{{!' selected' if d == chosen else ''}}>{{d}}</option>
% end
</select>
</label>
% if errors.get('disposition'):
<small id="disposition-error" class="field-error">{{errors['disposition']}}</small>
% end
<label for="note">Note on this call
<textarea id="note" name="note" rows="2"{{!' aria-invalid="true" aria-describedby="note-error"' if errors.get('note') else ''}}>{{form.get('note') or (this_note.note if this_note else '')}}</textarea>
</label>
% if errors.get('note'):
<small id="note-error" class="field-error">{{errors['note']}}</small>
% end
<button type="submit" id="pop-save">{{'Update note' if this_note else 'Save note'}}</button>
</form>
</article>
% end
