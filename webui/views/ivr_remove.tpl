% rebase('layout', title='Remove ' + kind)
<link rel="stylesheet" href="{{css}}">
<h1>Remove {{kind}} {{ident}}?</h1>
<p>Callers will no longer reach it. Anything that still sends callers there must be changed first; if something does, nothing is removed and the page says what.</p>
<form method="post" action="{{action}}" id="confirm-remove">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="confirm" value="yes">
<button type="submit" class="danger">Remove {{kind}} {{ident}}</button>
<a href="/ivr">Keep it</a>
</form>
