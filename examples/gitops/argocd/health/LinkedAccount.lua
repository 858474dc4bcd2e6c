-- Argo CD health check for partnerbilling.io/LinkedAccount.
-- Healthy: Ready=True. Progressing: no status yet, an old observedGeneration, or a reason that
-- is waiting for something (creation, invitation, dependency, closure). Degraded: Ready=False
-- for any other reason (a terminal error: the message says what to fix).
-- Suspended: paused (annotation partnerbilling.io/paused: "true", condition Paused=True): the
-- operator makes no AWS call for it. Under managementPolicy Observe: Healthy when observed
-- without drift; Degraded while Drifted=True, because the operator will never correct the
-- difference itself (fix the manifest or switch the object to Manage; the message lists it).
local progressing = {
  Creating = true, CreationQueued = true, InvitationPending = true, DependencyNotReady = true,
  Closing = true, NotificationPending = true, PlannedOnly = true, Pending = true,
  PayerNotFound = true,
}
local hs = { status = "Progressing", message = "Waiting for the operator" }
local annotations = obj.metadata and obj.metadata.annotations
local paused_annotation = annotations ~= nil and annotations["partnerbilling.io/paused"] == "true"
local conditions = {}
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    conditions[c.type] = c
  end
end
local paused = conditions["Paused"]
if paused_annotation or (paused ~= nil and paused.status == "True") then
  hs.status = "Suspended"
  if paused ~= nil and paused.status == "True" then
    hs.message = (paused.reason or "") .. ": " .. (paused.message or "")
  else
    hs.message = "Paused: the partnerbilling.io/paused annotation holds this object"
  end
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "The operator has not seen the latest spec yet"
  return hs
end
local c = conditions["Ready"]
if c == nil then
  return hs
end
local drifted = conditions["Drifted"]
if c.status == "True" and drifted ~= nil and drifted.status == "True" then
  hs.status = "Degraded"
  hs.message = (drifted.reason or "") .. ": " .. (drifted.message or "")
  return hs
end
if c.status == "True" then
  hs.status = "Healthy"
elseif c.status == "Unknown" or progressing[c.reason] then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = (c.reason or "") .. ": " .. (c.message or "")
return hs
