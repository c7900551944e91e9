% rebase('layout', title=c.name)
<link rel="stylesheet" href="/static/agent.css">
<p><a href="/contacts">← Contacts</a></p>
<h1 id="contact-name">{{c.name}}</h1>
% if crm:
<p><a href="{{crm}}" id="contact-crm" target="_blank" rel="noopener noreferrer">Open in CRM ↗</a></p>
% end
<form method="post" action="/contacts/{{c.id}}" novalidate class="contact-form">
<input type="hidden" name="csrf" value="{{csrf}}">
% include('agent_contact_fields')
<button type="submit" id="contact-save">Save</button>
</form>
<h2>Calls</h2>
<div class="scroll" id="contact-history">
% include('agent_history', rows=rows)
</div>
<form method="post" action="/contacts/{{c.id}}/remove" class="inline">
<input type="hidden" name="csrf" value="{{csrf}}">
<button type="submit" class="danger small">Remove this contact</button>
</form>
