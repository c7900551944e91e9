% rebase('layout', title='Remove queue')
<link rel="stylesheet" href="{{css}}">
<h1>Remove queue {{ident}}?</h1>
<p>Callers dialling its number will no longer reach it. Menus and queues still sending callers there must be changed first; if any does, nothing is removed and the page says what.</p>
<form method="post" action="/queues/{{ident}}/remove" id="confirm-remove">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="confirm" value="yes">
<button type="submit" class="danger">Remove queue {{ident}}</button>
<a href="/queues">Keep it</a>
</form>
