// goro/detail/intrusive_list.hpp — the doubly linked FIFO behind every wait
// queue (channels, sync types). Nodes live in their owners' frames; the list
// never allocates. Node must have `Node* next, *prev; bool queued`.
// Not thread-safe: always changed under the owning structure's lock. The
// head is `relaxed` for a peek without the lock (empty(): a hint only, as
// select's first pass uses a channel's queues).
#pragma once

#include "goro/detail/relaxed.hpp"

namespace goro::detail {

template <class Node>
struct intrusive_list {
    relaxed<Node*> head{nullptr};
    Node* tail = nullptr;

    bool empty() const noexcept { return static_cast<Node*>(head) == nullptr; }

    void push_back(Node* n) noexcept {
        n->next = nullptr;
        n->prev = tail;
        if (tail)
            tail->next = n;
        else
            head = n;
        tail = n;
        n->queued = true;
    }

    void push_front(Node* n) noexcept {
        n->prev = nullptr;
        n->next = head;
        if (head)
            head->prev = n;
        else
            tail = n;
        head = n;
        n->queued = true;
    }

    // No-op for a node that is not queued (a waker already took it).
    void remove(Node* n) noexcept {
        if (!n->queued) return;
        if (n->prev)
            n->prev->next = n->next;
        else
            head = n->next;
        if (n->next)
            n->next->prev = n->prev;
        else
            tail = n->prev;
        n->next = n->prev = nullptr;
        n->queued = false;
    }
};

}  // namespace goro::detail
