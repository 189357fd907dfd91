-- Argo CD health check for ccops.dev/TenantImport.
--
-- Maps the operator's status to an Argo CD health status:
--   Imported                -> Healthy
--   LockTimeout             -> Progressing (the operator retries with backoff)
--   Conflict, Invalid       -> Degraded (final until the spec or the re-run annotation changes)
--   Failed                  -> Degraded (the operator retries, but a person usually has to act)
--   no status yet, a spec generation or re-run request the operator has not processed,
--   or an attempt running (Progressing=True with reason Importing) -> Progressing
--   no outcome but Stalled=True -> Degraded, and Reconciling=True -> Progressing
--
-- The operator writes Ready, Progressing, Reconciling and Stalled. The outcome decides
-- first, and the conditions decide only for a status without one.
--
-- Argo CD runs health checks in gopher-lua, which implements Lua 5.1, so this script
-- uses nothing newer.

local RERUN_ANNOTATION = "ccops.dev/rerun"

local function find_condition(conditions, condition_type)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == condition_type then
      return condition
    end
  end
  return nil
end

-- Returns a condition's message, or the fallback when the condition or its message is absent.
local function message_of(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return fallback
end

local function imported_message(status)
  local tenant = "the tenant"
  if status.tenant ~= nil and status.tenant.url ~= nil then
    tenant = "tenant " .. status.tenant.url
  end
  local numbers = status.accessNumbers
  if numbers == nil then
    return "Imported " .. tenant
  end
  return string.format(
    "Imported %s: access numbers %d created, %d assigned, %d skipped",
    tenant, numbers.created or 0, numbers.assigned or 0, numbers.skipped or 0)
end

local function rerun_pending(obj, status)
  local annotations = obj.metadata and obj.metadata.annotations
  if annotations == nil or annotations[RERUN_ANNOTATION] == nil then
    return false
  end
  return annotations[RERUN_ANNOTATION] ~= status.observedRerun
end

local function assess(obj)
  local status = obj.status
  if status == nil then
    return "Progressing", "Waiting for the operator to start the import"
  end

  local generation = obj.metadata and obj.metadata.generation
  local observed = status.observedGeneration
  if generation ~= nil and (observed == nil or observed < generation) then
    return "Progressing", "Waiting for the operator to process generation " .. tostring(generation)
  end
  if rerun_pending(obj, status) then
    return "Progressing", "Waiting for the operator to run the import again for " .. RERUN_ANNOTATION
  end

  local conditions = status.conditions
  local ready = find_condition(conditions, "Ready")
  local progressing = find_condition(conditions, "Progressing")
  local reconciling = find_condition(conditions, "Reconciling")
  local stalled = find_condition(conditions, "Stalled")
  local running = progressing ~= nil and progressing.status == "True"
  if running and progressing.reason == "Importing" then
    return "Progressing", message_of(progressing, "Import in progress")
  end

  local detail = status.message
  if detail == nil or detail == "" then
    detail = message_of(ready, nil)
  end

  local outcome = status.outcome
  if outcome == "Imported" then
    return "Healthy", imported_message(status)
  elseif outcome == "LockTimeout" then
    return "Progressing", "Waiting for the import lock of the target cluster; the operator retries: " .. (detail or "lock timeout")
  elseif outcome == "Conflict" then
    return "Degraded", "Conflict: " .. (detail or "the tenant already exists in the target cluster")
  elseif outcome == "Invalid" then
    return "Degraded", "Invalid archive: " .. (detail or "the archive was rejected")
  elseif outcome == "Failed" then
    return "Degraded", "Failed, retrying: " .. (detail or "the import failed")
  end

  if ready ~= nil and ready.status == "True" then
    return "Healthy", message_of(ready, "Ready")
  end
  if stalled ~= nil and stalled.status == "True" then
    return "Degraded", message_of(stalled, "The import stopped on a final failure")
  end
  if running then
    return "Progressing", message_of(progressing, "Import in progress")
  end
  if reconciling ~= nil and reconciling.status == "True" then
    return "Progressing", message_of(reconciling, "Import in progress")
  end
  return "Progressing", message_of(ready, "Waiting for the operator to report an outcome")
end

local hs = {}
hs.status, hs.message = assess(obj)
return hs
