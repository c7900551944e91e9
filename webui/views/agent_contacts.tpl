% rebase('layout', title='Contacts')
<link rel="stylesheet" href="/static/agent.css">
<h1>Contacts</h1>
<p class="muted">The records the agent panel shows when a caller with that number rings an agent.</p>
<form method="get" action="/contacts" class="contact-search" role="search">
<input type="search" name="q" value="{{q}}" placeholder="Search number, name or company" aria-label="Search contacts">
<button type="submit" class="secondary">Search</button>
</form>
<div class="scroll">
<table id="contacts">
<thead><tr><th>Number</th><th>Name</th><th class="opt">Company</th></tr></thead>
<tbody>
% for c in rows:
<tr id="contact-{{c.id}}"><td><a href="/contacts/{{c.id}}">{{c.number}}</a></td><td>{{c.name}}</td><td class="opt">{{c.company}}</td></tr>
% end
% if not rows:
<tr><td colspan="3" class="muted">{{'No contact matches.' if q else 'No contacts yet: add the first below.'}}</td></tr>
% end
</tbody>
</table>
</div>
<h2>Add a contact</h2>
<form method="post" action="/contacts" novalidate class="add contact-form">
<input type="hidden" name="csrf" value="{{csrf}}">
% include('agent_contact_fields')
<button type="submit" id="contact-add">Add contact</button>
</form>
<h2>CRM link</h2>
<form method="post" action="/contacts/crm" novalidate class="add">
<input type="hidden" name="csrf" value="{{csrf}}">
% include('field', name='crm_url', label='Address to open with the caller\'s number (optional)', value=crm, error=errors.get('crm_url'), hint='e.g. https://crm.example/search?q={number}; empty: no link', attrs='inputmode="url" placeholder="https://crm.example/search?q={number}"')
<button type="submit" id="crm-save">Save CRM link</button>
</form>
