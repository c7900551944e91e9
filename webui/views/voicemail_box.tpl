% rebase('layout', title='Voicemail ' + box['number'])
<link rel="stylesheet" href="{{css}}">
<h1>Voicemail of {{box['number']}} <small class="muted">{{box['name']}}</small></h1>
<p><a href="/voicemail">← all mailboxes</a>
% if not box['mailbox']:
 · <span class="warn" id="no-mailbox">This extension has no mailbox now; these messages stay until deleted.</span>
% end
</p>
% if errors.get('form'):
<p class="form-error failed" id="form-error" role="alert">{{errors['form']}}</p>
% end
<p id="vm-count" class="muted">{{sum(1 for m in messages if m.folder == 'new')}} new, {{sum(1 for m in messages if m.folder == 'old')}} old; times are the box's local time.</p>
<div class="scroll">
<table id="messages">
<thead><tr><th>From</th><th>When</th><th>Length</th><th></th><th>Message</th><th></th></tr></thead>
<tbody>
% for m in messages:
<tr id="msg-{{m.id}}" data-folder="{{m.folder}}" data-seconds="{{'%.1f' % m.seconds}}" data-caller="{{m.caller}}">
<td class="from">{{m.caller or 'unknown'}}
% if m.caller_name:
<br><small class="muted">{{m.caller_name}}</small>
% end
</td>
<td>{{when(m.received)}}</td>
<td>{{h.duration(m.seconds)}}</td>
<td class="folder">{{!'<strong>new</strong>' if m.folder == 'new' else 'old'}}</td>
<td class="rec"><audio controls preload="none" src="/voicemail/{{box['number']}}/{{m.id}}/audio"></audio>
<a href="/voicemail/{{box['number']}}/{{m.id}}/audio?download=1" download class="download">download</a></td>
<td class="actions"><form method="post" action="/voicemail/{{box['number']}}/{{m.id}}" class="inline"><input type="hidden" name="csrf" value="{{csrf}}">
% if m.folder == 'new':
<button type="submit" name="action" value="heard" class="secondary small heard">Mark heard</button>
% end
<button type="submit" name="action" value="delete" class="danger small delete">Delete</button></form></td></tr>
% end
% if not messages:
<tr><td colspan="6" id="no-messages">No messages.</td></tr>
% end
</tbody>
</table>
</div>
