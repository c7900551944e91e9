% rebase('layout', title='Voicemail')
<link rel="stylesheet" href="{{css}}">
<h1>Voicemail</h1>
<p>An extension with a <strong>mailbox</strong> takes messages; with <strong>unanswered calls</strong> ticked, a call it does not answer (no answer, busy, no phone registered) goes there. IVR options and queues can send callers to any mailbox. The owner listens by dialling <code>*97</code> from their extension, or here; with a <strong>PIN</strong> (4-12 digits), also from any phone by <code>*98</code>.</p>
% if get('failed'):
<p class="form-error failed" id="failed" role="alert">{{failed}}</p>
% end
% if errors.get('form'):
<p class="form-error" id="form-error">{{errors['form']}}</p>
% end
<form method="post" action="/voicemail" novalidate id="voicemail-form" class="config policy">
<input type="hidden" name="csrf" value="{{csrf}}">
<div class="scroll">
<table id="mailboxes">
<thead><tr><th>Extension</th><th>Mailbox</th><th>Unanswered calls go here</th><th>PIN for *98</th><th>Messages</th></tr></thead>
<tbody>
% for r in rows:
% n = r['number']
<tr id="row-{{n}}"><td>{{n}} <small class="muted">{{r['name']}}</small></td>
<td><input type="checkbox" id="mb-{{n}}" name="mb-{{n}}" value="1"{{!' checked' if r['mailbox'] else ''}} aria-label="mailbox for {{n}}"{{!' aria-invalid="true" aria-describedby="mb-%s-error"' % n if errors.get('mb-' + n) else ''}}>
% if errors.get('mb-' + n):
<small id="mb-{{n}}-error" class="field-error">{{errors['mb-' + n]}}</small>
% end
</td>
<td><input type="checkbox" id="un-{{n}}" name="un-{{n}}" value="1"{{!' checked' if r['unanswered'] else ''}} aria-label="unanswered calls to {{n}} go to its mailbox"{{!' aria-invalid="true" aria-describedby="un-%s-error"' % n if errors.get('un-' + n) else ''}}>
% if errors.get('un-' + n):
<small id="un-{{n}}-error" class="field-error">{{errors['un-' + n]}}</small>
% end
</td>
<td><input type="password" id="pin-{{n}}" name="pin-{{n}}" inputmode="numeric" autocomplete="new-password" size="8" placeholder="{{'set: type to change' if r['has_pin'] else 'none'}}" aria-label="new PIN for mailbox {{n}}"{{!' aria-invalid="true" aria-describedby="pin-%s-error"' % n if errors.get('pin-' + n) else ''}}>
% if r['has_pin']:
<label class="check"><input type="checkbox" id="nopin-{{n}}" name="nopin-{{n}}" value="1"{{!' checked' if r['clear_pin'] else ''}}> remove</label>
% end
% if errors.get('pin-' + n):
<small id="pin-{{n}}-error" class="field-error">{{errors['pin-' + n]}}</small>
% end
</td>
<td class="counts">
% if r['mailbox'] or r['new'] or r['old']:
<a href="/voicemail/{{n}}" id="open-{{n}}"><strong>{{r['new']}}</strong> new, {{r['old']}} old</a>
% else:
<span class="muted">-</span>
% end
</td></tr>
% end
% if not rows:
<tr><td colspan="5">No extensions yet.</td></tr>
% end
</tbody>
</table>
</div>
% include('field', name='max_seconds', label='Longest message (seconds, 10-3600)', value=max_seconds, error=errors.get('max_seconds'), attrs='inputmode="numeric"')
<button type="submit" id="save-voicemail">Save voicemail</button>
</form>
